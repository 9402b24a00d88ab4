"""LOG_FORMAT=json: every line the server writes is one JSON object, with no secret in it."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.fixtures_bot import MARKETING, Bot, free_assets, stored
from tests.fixtures_slack import SIGNING_SECRET


def test_json_logs_parse_line_by_line_and_hold_no_secret(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(LOG_FORMAT="json", LOG_LEVEL="DEBUG", process=True)
    assets = free_assets(bot.simulator, MARKETING, 2)
    _, operation_id = bot.preview(f'"Marketing Library" {" ".join(assets)}')
    bot.click("addtolib_confirm", operation_id)
    bot.summary(operation_id)
    bot.slack.wait_until(lambda: stored(bot, operation_id).state == "done")
    bot.process.stop()
    lines = [line for line in bot.process.output().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON, or this raises
    assert len(entries) > 10
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
    output = "\n".join(lines)
    for secret in (bot.env["SLACK_BOT_TOKEN"], SIGNING_SECRET, bot.env["UPLYNK_API_KEY"]):
        assert secret not in output
    assert "sig=" not in output.replace("sig=***", "").replace("sig=[redacted]", "")
    assert any(entry.get("operation_id") == operation_id for entry in entries)
    assert any(entry["level"] == "DEBUG" for entry in entries)


def test_an_unknown_log_format_stops_start_up_naming_the_variable(bot_env: dict) -> None:
    import subprocess
    import sys

    from tests.bot_process import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={"PATH": "/usr/bin:/bin", **bot_env, "LOG_FORMAT": "xml"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LOG_FORMAT must be text or json, got 'xml'" in result.stderr
