"""End to end through Socket Mode: `python -m bot socket` against the stand-in's WebSocket."""

from __future__ import annotations

import time
from typing import Any

from bot.slack_standin.socket_mode import Ack
from bot.slack_standin.views import validate_view
from tests.fixtures_bot import MARKETING, USER, button_value, free_assets, patches, stored, text_of
from tests.fixtures_socket import APP_TOKEN, SocketBot
from tests.slack_requests import API_APP_ID, VERIFICATION_TOKEN, SlackSender

# Uplynk answers every call after this long (issue 9: 2.5 s). An ack that waited for even one
# Uplynk answer would arrive after it; the stand-in also refuses acks later than Slack's 3 s.
SLOW_UPLYNK = 1.5  # seconds an Uplynk call takes: longer than any acknowledgement should


def before_any_uplynk_answer(bot: SocketBot, ack: Ack) -> bool:
    """The ack reached Slack before Uplynk could have answered any of the bot's calls."""
    first = min((r.at for r in bot.simulator.requests), default=ack.at)
    return ack.at < first + SLOW_UPLYNK


def test_command_preview_confirm_summary_with_a_slow_uplynk(socket_bot: SocketBot) -> None:
    bot = socket_bot
    assets = free_assets(bot.simulator, MARKETING, 2)
    opened = bot.slack.calls_of("apps.connections.open")
    assert [c.token for c in opened] == [APP_TOKEN] and opened[0].ok
    bot.simulator.faults.set_latency("*", SLOW_UPLYNK)

    ack, key = bot.command(f'"Marketing Library" {assets[0]} {assets[1]}')
    print(
        f"slash command acknowledged in {ack.latency * 1000:.0f} ms (Uplynk takes {SLOW_UPLYNK} s)"
    )
    assert ack.ok, ack.error
    assert "Checking 2 assets for Marketing Library" in ack.payload["text"]

    preview = bot.reply(key, "addtolib_confirm", timeout=30)
    assert before_any_uplynk_answer(bot, ack)
    assert "Add 2 assets" in text_of(preview)
    operation_id = button_value(preview, "addtolib_confirm")
    assert operation_id

    bot.simulator.clear_requests()
    ack, _click_key = bot.click("addtolib_confirm", operation_id)
    print(f"confirm click acknowledged in {ack.latency * 1000:.0f} ms")
    assert ack.ok, ack.error
    assert ack.payload is None  # a block_actions envelope takes an empty ack only

    summary = bot.summary(operation_id, timeout=30)
    assert before_any_uplynk_answer(bot, ack)
    assert "Marketing Library" in text_of(summary) and MARKETING in text_of(summary)
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert {*assets} <= bot.simulator.catalogue.library_assets(MARKETING)
    assert stored(bot, operation_id).state == "done"
    assert all(a.ok for a in bot.sm.acks), [a.error for a in bot.sm.acks]
    # The bot's Web API calls use the bot token; only apps.connections.open used the app token.
    posts = bot.slack.calls_of("chat.postMessage")
    assert posts and all(c.token == bot.env["SLACK_BOT_TOKEN"] for c in posts)


def test_a_parse_error_is_answered_in_the_ack_itself(socket_bot: SocketBot) -> None:
    bot = socket_bot
    ack, key = bot.command('"Marketing Library" 7a08bca2 nothex!')
    assert ack.ok, ack.error
    assert "This is not an asset id: `nothex!`" in ack.payload["text"]
    assert ack.payload["response_type"] == "ephemeral"
    ack, other = bot.command('"Marketing Library"')
    assert "No asset ids given for library `Marketing Library`" in ack.payload["text"]
    assert bot.replies(key) == [] and bot.replies(other) == []
    assert bot.simulator.requests == []


def test_a_refresh_request_reconnects_and_the_bot_keeps_working(socket_bot: SocketBot) -> None:
    bot = socket_bot
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    first = bot.sm.disconnect("refresh_requested", close_after=1.0)
    second = bot.sm.wait_connected(2)
    assert second.number == 2
    opened = bot.slack.calls_of("apps.connections.open", ok=True)
    assert len(opened) == 2  # a new URL for the new connection: tickets work once

    ack, key = bot.command(f"{MARKETING} {asset}")
    assert ack.ok, ack.error  # within Slack's 3 s, on the new connection
    assert ack.connection == 2
    operation_id = button_value(bot.reply(key, "addtolib_confirm"), "addtolib_confirm")
    bot.click("addtolib_confirm", operation_id)
    assert "Added (1):" in text_of(bot.summary(operation_id))
    assert bot.sm.wait_closed(first.number) and second.open
    assert bot.process.alive


def test_an_envelope_delivered_twice_runs_its_operation_once(socket_bot: SocketBot) -> None:
    bot = socket_bot
    *assets, spare = free_assets(bot.simulator, MARKETING, 3)
    _ack, key = bot.command(f"{MARKETING} {assets[0]} {assets[1]}")
    operation_id = button_value(bot.reply(key, "addtolib_confirm"), "addtolib_confirm")
    bot.simulator.faults.set_latency("add", SLOW_UPLYNK)  # the first delivery is still running

    click, _ = bot.click_envelope("addtolib_confirm", operation_id)
    # Slack redelivers an envelope whose ack it did not get in time: same id and payload,
    # once as is and once marked as a retry.
    bot.sm.send("interactive", click.payload, envelope_id=click.envelope_id)
    bot.sm.send("interactive", click.payload, envelope_id=click.envelope_id, retry_attempt=1)
    for n in (1, 2, 3):
        assert bot.sm.wait_ack(click.envelope_id, count=n).ok

    bot.summary(operation_id, timeout=30)
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    summaries = [
        c
        for c in bot.slack.calls_of("chat.postMessage")
        if operation_id in str(c.payload) and c.channel == "C0GENERAL"
    ]
    assert len(summaries) == 1
    assert stored(bot, operation_id).state == "done"

    # A slash command redelivered as a retry does not plan a second operation.
    payload, retry_key = bot.command_payload(f"{MARKETING} {spare}")
    original = bot.sm.send("slash_commands", payload)
    bot.sm.send("slash_commands", payload, envelope_id=original.envelope_id, retry_attempt=1)
    first, second = (bot.sm.wait_ack(original.envelope_id, count=n) for n in (1, 2))
    assert first.ok and "Checking 1 asset" in first.payload["text"]
    assert second.ok and second.payload is None  # acknowledged, and nothing else done
    bot.reply(retry_key, "addtolib_confirm")
    assert len(bot.replies(retry_key)) == 1


def test_retry_attempt_zero_is_a_first_delivery(socket_bot: SocketBot) -> None:
    # Bolt turns an envelope's retry_attempt into X-Slack-Retry-Num; Events API envelopes carry
    # retry_attempt 0 on their first delivery, which must be handled, not ignored as a retry.
    bot = socket_bot
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    payload, key = bot.command_payload(f"{MARKETING} {asset}")
    envelope = bot.sm.send("slash_commands", payload, retry_attempt=0, retry_reason="")
    ack = bot.sm.wait_ack(envelope.envelope_id)
    assert ack.ok and "Checking 1 asset" in ack.payload["text"]
    operation_id = button_value(bot.reply(key, "addtolib_confirm"), "addtolib_confirm")
    click = bot.sender.block_actions_payload("addtolib_confirm", operation_id, user_id=USER)
    envelope = bot.sm.send("interactive", click, retry_attempt=0, retry_reason="")
    assert bot.sm.wait_ack(envelope.envelope_id).ok
    assert "Added (1):" in text_of(bot.summary(operation_id, timeout=30))
    assert [p.body for p in patches(bot.simulator)] == [{"asset_id": asset}]


def _user(user_id: str = USER) -> dict[str, Any]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": "T0001"}


def _submission(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A view_submission payload, as in tests/slack_requests.py but for an envelope."""
    return {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "demo"},
        "user": _user(),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": SlackSender.trigger_id(),
        "view": {**view, "state": {"values": values}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def test_the_modal_answers_its_response_actions_in_the_ack(socket_bot: SocketBot) -> None:
    bot = socket_bot
    assets = free_assets(bot.simulator, MARKETING, 2)
    trigger = bot.slack.new_trigger()
    shortcut = {
        "type": "shortcut",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": {"id": "T0001", "domain": "demo"},
        "user": _user(),
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": "addtolib_shortcut",
        "trigger_id": trigger,
    }
    ack = bot.interaction(shortcut)
    assert ack.ok and ack.payload is None
    opened = bot.slack.wait_for(
        lambda c: c.method == "views.open" and c.payload.get("trigger_id") == trigger
    )
    assert opened.ok, opened.error
    form = bot.slack.views.opened_by(trigger)

    values = SlackSender.form_values
    ack = bot.interaction(_submission(form, values(MARKETING, f"{assets[0]} zz12", "C0SUMMARY")))
    assert ack.ok, ack.error
    assert ack.payload["response_action"] == "errors"
    assert "`zz12`" in ack.payload["errors"]["assets"]

    typed = f"{assets[0]} {assets[1]}"
    ack = bot.interaction(_submission(form, values(MARKETING, typed, "C0SUMMARY")))
    assert ack.ok, ack.error
    assert ack.payload["response_action"] == "update"
    validate_view(ack.payload["view"])
    bot.slack.views.submitted(form["id"], ack.payload["view"])
    preview = bot.slack.views.view(form["id"])
    operation_id = preview["private_metadata"]
    assert preview["submit"]["text"] == "Add 2 assets"

    ack = bot.interaction(_submission(preview, {}))
    assert ack.ok and ack.payload == {"response_action": "clear"}
    assert bot.summary(operation_id).channel == "C0SUMMARY"
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
