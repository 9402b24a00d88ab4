"""`/addtolib history` over real HTTP, and the audit export `python -m bot history`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

from tests.bot_process import REPO_ROOT
from tests.fixtures_bot import (
    ADMIN,
    ARCHIVE,
    MARKETING,
    NOTIFY,
    OTHER,
    USER,
    Bot,
    free_assets,
    text_of,
)
from tests.ops_support import add, thread_of


def history(bot: Bot, text: str, user_id: str) -> list[str]:
    """The ephemeral history answer, one entry per line of blocks (header first)."""
    response, key = bot.command(text, user_id=user_id)
    assert response.status_code == 200, response.text
    answer = bot.reply(key, "operations")
    assert answer.payload.get("response_type") == "ephemeral"
    return [b["text"]["text"] for b in answer.payload["blocks"] if b.get("text")]


def link(bot: Bot, operation_id: str) -> str:
    parent = thread_of(bot, operation_id)
    return f"https://slack.example/archives/{NOTIFY}/p{parent.ts.replace('.', '')}"


def export(bot: Bot, *args: str) -> list[dict]:
    """`python -m bot history ARGS` on the bot's database, parsed JSON lines."""
    env = {**os.environ, "DATABASE_URL": bot.env["DATABASE_URL"]}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "history", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_history_lists_own_operations_admin_sees_all_and_library_filter(bot: Bot) -> None:
    mine = free_assets(bot.simulator, MARKETING, 4)
    first, _ = add(bot, f"{MARKETING} {mine[0]} {mine[1]}")
    theirs, _ = add(bot, f"{MARKETING} {mine[2]}", user_id=OTHER)
    archived = free_assets(bot.simulator, ARCHIVE, 1)[0]
    second, _ = add(bot, f'"Marketing Library Archive" {archived} {mine[3]}')
    bot.click("addtolib_undo", first)
    bot.slack.wait_for(lambda c: "undid this" in c.text)
    links = {op: link(bot, op) for op in (first, theirs, second)}

    own = history(bot, "history", USER)
    assert own[0] == "Your recent operations"
    assert len(own) == 3 and links[theirs] not in "".join(own)
    newest, oldest = own[1], own[2]  # newest first
    assert links[second] in newest and "*Marketing Library Archive*" in newest
    assert "2 requested, 2 added" in newest and "`done`" in newest
    assert links[first] in oldest and "*Marketing Library*" in oldest
    assert "2 added, 2 removed" in oldest and "`undone`" in oldest
    assert all(f"<@{USER}>" in line and "<!date^" in line for line in own[1:])

    everyone = history(bot, "history", ADMIN)
    assert everyone[0] == "Recent operations (everyone)" and len(everyone) == 4
    for op, line in zip((second, theirs, first), everyone[1:], strict=True):
        assert links[op] in line
    assert f"<@{OTHER}>" in everyone[2]

    by_name = history(bot, 'history "Marketing Library"', USER)
    assert len(by_name) == 2 and links[first] in by_name[1]
    by_id = history(bot, f"history {MARKETING.upper()}", ADMIN)
    assert len(by_id) == 3 and links[theirs] in by_id[1] and links[first] in by_id[2]

    _, key = bot.command("history", user_id="U0NOBODY")
    assert "No operations yet" in text_of(bot.reply(key))


def test_audit_export_prints_who_when_and_each_assets_outcome(bot: Bot) -> None:
    new = free_assets(bot.simulator, MARKETING, 2)
    present = sorted(bot.simulator.catalogue.library_assets(MARKETING))[0]
    undone, _ = add(bot, f"{MARKETING} {new[0]} {present}")
    bot.click("addtolib_undo", undone, user_id=ADMIN)
    bot.slack.wait_for(lambda c: "undid this" in c.text)
    kept, _ = add(bot, f"{MARKETING} {new[1]}", user_id=OTHER)

    rows = export(bot)
    assert [r["id"] for r in rows] == [kept, undone]  # newest first
    row = rows[1]
    assert (row["user_id"], row["confirmed_by"], row["undone_by"]) == (USER, USER, ADMIN)
    assert row["state"] == "undone" and row["library_id"] == MARKETING
    assert row["outcome"] == {new[0]: "removed by undo", present: "already in library"}
    times = [datetime.fromisoformat(row[f"{t}_at"]) for t in ("created", "confirmed", "undone")]
    assert times == sorted(times) and row["finished_at"]
    assert row["notify_channel"] == NOTIFY and row["notify_ts"]
    assert rows[0]["outcome"] == {new[1]: "added"} and rows[0]["user_id"] == OTHER

    assert [r["id"] for r in export(bot, "--user", USER, "--limit", "1")] == [undone]
    assert export(bot, "--library", ARCHIVE) == []
