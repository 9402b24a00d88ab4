"""Policy reload: an edit takes effect within 10 s without a restart; a broken edit is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.check import main as check_main
from bot.config import load_settings
from bot.core.policy_holder import PolicyHolder
from tests.fixtures_bot import MARKETING, POLICY, Bot, free_assets, text_of

NEWCOMER = "U0NEWCOMER"
WITH_NEWCOMER = POLICY.replace('users = ["U0USER", "U0OTHER"]', f'users = ["{NEWCOMER}"]')
BROKEN = WITH_NEWCOMER.replace("[[allow]]", "[[allow]\n", 1)  # not TOML any more


def test_holder_swaps_a_valid_edit_and_keeps_the_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    now = [0.0]
    holder = PolicyHolder(path, interval=2.0, clock=lambda: now[0])
    seen = []
    holder.on_change(seen.append)
    assert holder.check("U0USER", MARKETING, "C1", lambda u: set()).allowed
    path.write_text(WITH_NEWCOMER)
    assert holder.check(NEWCOMER, MARKETING, "C1", lambda u: set()).allowed is False  # not yet
    now[0] = 2.0
    assert holder.check(NEWCOMER, MARKETING, "C1", lambda u: set()).allowed
    assert not holder.check("U0USER", MARKETING, "C1", lambda u: set()).allowed
    assert len(seen) == 1 and holder.problem is None
    path.write_text(BROKEN)
    now[0] = 4.0
    assert holder.check(NEWCOMER, MARKETING, "C1", lambda u: set()).allowed  # last good kept
    assert str(path) in holder.problem and "line 4" in holder.problem
    path.unlink()
    now[0] = 6.0
    assert holder.check(NEWCOMER, MARKETING, "C1", lambda u: set()).allowed
    assert "missing" in holder.problem


PROTECTED = (
    POLICY
    + f"""
[[protect]]
libraries = ["{MARKETING}"]
approvers = ["U0LEAD"]
"""
)


def test_a_half_written_file_is_not_taken_until_two_reads_agree(tmp_path: Path) -> None:
    # An editor rewriting the file: the prefix (its [[allow]] entries, no [[protect]]) parses
    # on its own; caught between the two reads, it must not drop the protection.
    path = tmp_path / "policy.toml"
    path.write_text(PROTECTED)
    now = [0.0]
    rewritten = PROTECTED.replace('"U0USER", "U0OTHER"', '"U0USER", "U0OTHER", "U0THIRD"')
    prefix = rewritten[: rewritten.index("[[protect]]")]
    writes: list[str] = []

    def writer_finishes(seconds: float) -> None:
        # The pause between the two reads: the writer is still at work during it.
        assert seconds == 0.25  # interval / 8
        if writes:
            path.write_text(writes.pop(0))

    holder = PolicyHolder(path, interval=2.0, clock=lambda: now[0], pause=writer_finishes)
    assert holder.protections_for(MARKETING)
    path.write_text(prefix)
    writes.append(rewritten)
    now[0] = 2.0
    assert holder.refresh() is False  # read, pause (the write ends), read: they differ
    assert holder.protections_for(MARKETING), "a half-written file was taken"
    assert holder.problem is None
    assert holder.refresh() is True  # now both reads agree, and the whole file is taken
    assert holder.protections_for(MARKETING)
    assert holder.check("U0THIRD", MARKETING, "C1", lambda u: set()).allowed
    # A file that stays a prefix (both reads agree) is a policy: the writer meant it.
    path.write_text(prefix)
    assert holder.refresh() is True and not holder.protections_for(MARKETING)


def preview_text(bot: Bot, user: str, assets: list[str]) -> str:
    call, _ = bot.preview(f'"Marketing Library" {" ".join(assets)}', user_id=user)
    return text_of(call)


def test_a_running_bot_picks_up_an_edit_and_survives_a_broken_one(
    start_bot: Callable[..., Bot], policy_file: Path
) -> None:
    bot = start_bot(process=True)
    assets = free_assets(bot.simulator, MARKETING, 1)
    assert "You may not add" in preview_text(bot, NEWCOMER, assets)
    policy_file.write_text(WITH_NEWCOMER)
    edited = time.monotonic()
    while "Add 1 asset" not in preview_text(bot, NEWCOMER, assets):
        # The promise is 10 s; the holder looks every 2 s.
        assert time.monotonic() - edited < 10, "the edit did not take effect within 10 s"
        time.sleep(0.5)
    policy_file.write_text(BROKEN)
    broken = time.monotonic()
    while "policy not reloaded" not in bot.process.output():
        assert time.monotonic() - broken < 10, bot.process.output()[-2000:]
        time.sleep(0.5)
    assert f"{policy_file}" in bot.process.output() and "line 4" in bot.process.output()
    assert "Add 1 asset" in preview_text(bot, NEWCOMER, assets)  # the last good policy
    lines: list[str] = []
    assert check_main(settings=load_settings(env=bot.env), out=lines.append) == 1
    assert any(line.startswith("policy ") and "line 4" in line for line in lines), lines
