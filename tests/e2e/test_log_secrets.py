"""A full run's logs, even at DEBUG, hold no token, secret, API key or Uplynk signature."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

import bot.simulator.server as simulator_server
from tests.fixtures_bot import (
    MARKETING,
    Bot,
    ack_text,
    free_assets,
    patches,
    stored,
    text_of,
)
from tests.fixtures_slack import SIGNING_SECRET
from tests.slack_requests import SlackSender

WRONG_KEY = "wrong-uplynk-key-7f3a9c1e5b"
UNREDACTED_SIG = re.compile(r"(?i)\bsig=(?!\*\*\*|\[redacted\])[^&\s'\"]+")
UNREDACTED_MSG = re.compile(r"(?i)\bmsg=(?!\*\*\*|\[redacted\])[A-Za-z0-9%+/=]{16,}")


@pytest.mark.reliability
def test_debug_logs_of_a_full_run_hold_no_secret(
    start_bot: Callable[..., Bot], monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[tuple[str, str]] = []  # every (msg, sig) the simulator checked
    real_verify = simulator_server.verify

    def recording_verify(msg: str, sig: str, key: str) -> bool:
        received.append((msg, sig))
        return real_verify(msg, sig, key)

    monkeypatch.setattr(simulator_server, "verify", recording_verify)
    bot = start_bot(LOG_LEVEL="DEBUG", process=True)
    sender = bot.sender

    # A full add, then its undo.
    assets = free_assets(bot.simulator, MARKETING, 2)
    _, operation_id = bot.preview(f'"Marketing Library" {" ".join(assets)}')
    bot.click("addtolib_confirm", operation_id)
    bot.summary(operation_id)
    _, undo_key = bot.click("addtolib_undo", operation_id)
    bot.reply(undo_key, "Undone")
    assert stored(bot, operation_id).state == "undone" and len(patches(bot.simulator)) == 1

    # A parse error, forged and malformed requests, and a retry.
    response, _ = bot.command('"Marketing Library" not-an-id')
    assert "not an asset id" in ack_text(response)
    forger = SlackSender(bot.process.url, SIGNING_SECRET[::-1], standin=bot.slack)
    assert forger.command("help").status_code == 401
    assert (
        sender.command("help", extra_headers={"X-Slack-Signature": "v0=" + "0" * 64}).status_code
        == 401
    )
    assert sender.command("help", timestamp=int(time.time()) - 600).status_code == 401
    assert (
        sender.raw("payload=%7B", {"Content-Type": "application/x-www-form-urlencoded"}).status_code
        == 400
    )

    # Uplynk refusing a wrong API key (401), seen by a second bot.
    wrong = start_bot(LOG_LEVEL="DEBUG", UPLYNK_API_KEY=WRONG_KEY, process=True)
    call, confirm = wrong.preview(f"{MARKETING} {assets[0]}")
    assert not confirm and "refused the bot's credentials (401)" in text_of(call)

    time.sleep(0.5)  # let the last log lines reach the files
    for process, key in ((bot.process, bot.env["UPLYNK_API_KEY"]), (wrong.process, WRONG_KEY)):
        log = process.output()
        assert " DEBUG " in log and "POST /slack/events 200" in log
        # urllib3 logged the signed Uplynk URLs at DEBUG, scrubbed.
        assert "sig=[redacted]" in log or "sig=***" in log
        secrets = {
            "Slack bot token": bot.env["SLACK_BOT_TOKEN"],
            "signing secret": SIGNING_SECRET,
            "Uplynk API key": key,
        }
        for name, secret in secrets.items():
            assert secret not in log, f"the {name} is in the log"
        assert not UNREDACTED_SIG.search(log), UNREDACTED_SIG.search(log)
        assert not UNREDACTED_MSG.search(log), UNREDACTED_MSG.search(log)
        assert received
        leaked = [sig for _, sig in received if sig in log]
        assert not leaked, f"{len(leaked)} Uplynk signatures are in the log"
        assert not [msg for msg, _ in received if msg in log]
    assert "POST /slack/events 401" in bot.process.output()
    # slack_sdk's webhook client logs every response_url it posts to at DEBUG: the key (a
    # bearer credential for 30 minutes) is masked, the host kept.
    log = bot.process.output()
    assert "Sending a request - url: " in log and f"{bot.slack.url.split('/api/')[0]}/" in log
    used = {c.key for c in bot.slack.calls_of("response_url")}
    assert undo_key in used and not [key for key in used if key in log]
    assert "-> 401" in wrong.process.output()
