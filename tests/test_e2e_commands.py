"""End to end over real HTTP: help, parse errors, refusals and Slack's signature check."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.fixtures_bot import (
    ARCHIVE,
    MARKETING,
    SPORTS,
    USER,
    Bot,
    ack_text,
    free_assets,
    patches,
    stored,
    text_of,
)
from tests.fixtures_slack import EDITOR_USER, EDITORS_GROUP, SIGNING_SECRET
from tests.slack_requests import SlackSender

STRANGER = "U0STRANGER"
ASSET = "7a08bca2"
FOUR_IDS = " ".join(f"{n:08x}" for n in range(1, 5))


def test_help_and_every_parse_error_are_answered_at_once(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(ADDTOLIB_MAX_ASSETS="3")
    bad_inputs = {
        f'"Marketing Library" {ASSET} nothex!': "This is not an asset id: `nothex!`",
        f'"Marketing Library" {ASSET} <https://example.com/video|clip>': (
            "This link has no 32-character asset id in it"
        ),
        f'"Marketing Library {ASSET}': "The library name's quote is not closed",
        f'"" {ASSET}': "The library name is empty",
        f'"{"x" * 300}" {ASSET}': "The library name is too long (300 characters",
        f'"Mark\x01eting" {ASSET}': "contains control characters",
        f"{ASSET} 41ee4f5a": "`7a08bca2` looks like an asset id, but the first word",
        f"<https://example.com/libraries> {ASSET}": "must start with a library id or name",
        '"Marketing Library"': "No asset ids given for library `Marketing Library`",
        f'"Marketing Library" {FOUR_IDS}': "Too many assets: 4 distinct ids, but at most 3",
        'history "Marketing Library" extra': "`history` takes at most one library",
    }
    keys = []
    for text, expected in bad_inputs.items():
        response, key = bot.command(text)
        assert response.status_code == 200, response.text
        assert response.json()["response_type"] == "ephemeral"
        assert expected in ack_text(response), (text, ack_text(response))
        keys.append(key)
    assert bot.simulator.requests == []

    response, key = bot.command("help")
    assert response.status_code == 200
    help_text = text_of(bot.reply(key, "Usage"))
    assert "/addtolib LIBRARY ASSET" in help_text and "/addtolib history" in help_text
    for library_id in (MARKETING, ARCHIVE):
        assert library_id in help_text
    assert "*Marketing Library*" in help_text and "*Ad Breaks*" in help_text
    assert "Sports Highlights" not in help_text and SPORTS not in help_text

    # An empty command is help too; the editors' group may add anywhere from #edit.
    response, key = bot.command("", user_id=EDITOR_USER, channel_id="C0EDIT")
    assert "You may add to *every* library." in text_of(bot.reply(key, "Usage"))

    # The parse errors were answered in their acknowledgement only: no later post, no API call.
    assert not [c for c in bot.slack.calls_of("response_url") if c.key in keys]
    assert {r.call for r in bot.simulator.requests} == {"get_library"}


# No wildcard: a user named nowhere must still be told which rule is missing.
NARROW_POLICY = f"""
admins = ["U0ADMIN"]

[[allow]]
libraries = ["{MARKETING}"]
users = ["{USER}"]

[[allow]]
libraries = ["{SPORTS}"]
usergroups = ["{EDITORS_GROUP}"]
channels = ["C0EDIT"]
"""


def test_refusals_name_the_missing_rule_and_are_recorded(
    start_bot: Callable[..., Bot], tmp_path: Path
) -> None:
    policy = tmp_path / "narrow.toml"
    policy.write_text(NARROW_POLICY)
    bot = start_bot(ADDTOLIB_POLICY=str(policy))
    asset = free_assets(bot.simulator, MARKETING, 1)[0]

    call, operation_id = bot.preview(f'"Marketing Library" {asset}', user_id=STRANGER)
    assert operation_id == "" and call.payload["response_type"] == "ephemeral"
    refusal = text_of(call)
    assert f"you (<@{STRANGER}>) are not named in any [[allow]] entry for any library" in refusal
    denied = stored(bot, user_id=STRANGER)
    assert denied.state == "denied" and "not named in any [[allow]] entry" in denied.denial_reason
    assert denied.requested_ids == [asset]

    # Allowed elsewhere, but not for this library.
    call, _ = bot.preview(f"{SPORTS} {asset}")
    assert f"not named in any [[allow]] entry for library {SPORTS}" in text_of(call)
    assert "Sports Highlights" in text_of(call)
    denied = stored(bot, user_id=USER)
    assert (denied.state, denied.library_id) == ("denied", SPORTS)

    # The editors' rule only works from its channel.
    call, _ = bot.preview(f"{SPORTS} {asset}", user_id=EDITOR_USER, channel_id="C0GENERAL")
    assert "the [[allow]] entry naming you only allows channels <#C0EDIT>" in text_of(call)
    assert stored(bot, user_id=EDITOR_USER).state == "denied"

    assert patches(bot.simulator) == []


def test_forged_and_stale_requests_get_401_and_do_nothing(bot: Bot) -> None:
    text = f'"Marketing Library" {free_assets(bot.simulator, MARKETING, 1)[0]}'
    forger = SlackSender(bot.process.url, SIGNING_SECRET[::-1], standin=bot.slack)
    assert forger.command(text).status_code == 401
    assert forger.click("addtolib_confirm", "0" * 32).status_code == 401
    stale = int(time.time()) - 6 * 60
    assert bot.sender.command(text, timestamp=stale).status_code == 401
    assert bot.sender.click("addtolib_confirm", "0" * 32, timestamp=stale).status_code == 401
    unsigned = bot.sender.raw("text=help", {"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401

    assert bot.slack.calls == [] and bot.simulator.requests == []

    # A genuine request still works, and is the only thing that reached Slack or Uplynk.
    call, operation_id = bot.preview(text)
    assert operation_id
    assert {c.key for c in bot.slack.calls_of("response_url")} == {call.key}
    # The library and the assets are looked up together (in either order).
    assert sorted(r.call for r in bot.simulator.requests if r.call != "get_library") == [
        "find_libraries",
        "get_assets",
    ]
