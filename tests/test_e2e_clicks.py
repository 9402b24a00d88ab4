"""End to end over real HTTP: the buttons: cancel, who may confirm, forged values, races, expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bot.slack_standin import SlackCall
from tests.fixtures_bot import (
    ADMIN,
    MARKETING,
    OTHER,
    SPORTS,
    Bot,
    free_assets,
    patches,
    stored,
    text_of,
)
from tests.fixtures_slack import EDITOR_USER, EDITORS_GROUP

UNKNOWN_OPERATION = "0123456789abcdef" * 2


def test_cancel_and_clicks_by_others_or_on_unknown_operations_add_nothing(bot: Bot) -> None:
    dropped, *assets = free_assets(bot.simulator, MARKETING, 3)
    _, cancelled_id = bot.preview(f'"Marketing Library" {dropped}')
    _, operation_id = bot.preview(f'"Marketing Library" {" ".join(assets)}')

    _, key = bot.click("addtolib_cancel", cancelled_id)
    cancelled = bot.reply(key, "Cancelled")
    assert cancelled.payload["replace_original"] is True
    assert "nothing was added to *Marketing Library*" in text_of(cancelled)
    _, key = bot.click("addtolib_confirm", cancelled_id)
    assert "was cancelled; nothing more was done" in text_of(bot.reply(key, ":warning:"))
    assert stored(bot, cancelled_id).state == "cancelled"

    # Another (non-admin) user, made-up operation ids and empty values: refused, no API call.
    bot.simulator.clear_requests()
    for action in ("addtolib_confirm", "addtolib_cancel"):
        _, key = bot.click(action, operation_id, user_id=OTHER)
        refusal = text_of(bot.reply(key, ":warning:"))
        assert "Only <@U0USER> (who asked) or an admin can" in refusal
    for action in ("addtolib_confirm", "addtolib_cancel", "addtolib_undo", "addtolib_retry"):
        for value in (UNKNOWN_OPERATION, ""):
            _, key = bot.click(action, value)
            refusal = text_of(bot.reply(key, ":warning:"))
            assert "does not belong to any operation I know; nothing was done" in refusal
    for value in (f"{UNKNOWN_OPERATION}:{MARKETING}", ""):
        _, key = bot.click("addtolib_pick_library", value)
        assert "no longer matches a waiting request" in text_of(bot.reply(key, ":warning:"))
    assert bot.simulator.requests == []
    assert stored(bot, operation_id).state == "pending"

    # An admin may confirm someone else's operation.
    bot.click("addtolib_confirm", operation_id, user_id=ADMIN)
    summary = text_of(bot.summary(operation_id))
    assert f"Asked by <@U0USER>, confirmed by <@{ADMIN}>" in summary
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert stored(bot, operation_id).confirmed_by == ADMIN
    assert dropped not in bot.simulator.catalogue.library_assets(MARKETING)


def test_ten_simultaneous_confirm_clicks_add_once(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 3)
    _, operation_id = bot.preview(f'"Marketing Library" {" ".join(assets)}')

    with ThreadPoolExecutor(max_workers=10) as pool:
        clicks = list(pool.map(lambda _: bot.click("addtolib_confirm", operation_id), range(10)))
    keys = {key for _, key in clicks}
    bot.summary(operation_id)

    def final(call: SlackCall) -> bool:
        return any(word in text_of(call) for word in ("Added 3 assets", "nothing more was done"))

    def every_click_answered():
        # Final answers only: the winner's outcome may follow a progress update.
        answers = [c for c in bot.slack.calls_of("response_url") if c.key in keys and final(c)]
        return answers if {c.key for c in answers} == keys else None

    answers = bot.slack.wait_until(every_click_answered)
    outcomes = [c for c in answers if "Added 3 assets" in text_of(c)]
    refusals = [c for c in answers if "nothing more was done" in text_of(c)]
    assert len(outcomes) == 1 and len(refusals) == 9
    assert len(patches(bot.simulator)) == 1
    assert stored(bot, operation_id).state == "done"


def test_an_expired_confirmation_is_refused(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(ADDTOLIB_CONFIRM_TTL="1")
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    _, operation_id = bot.preview(f'"Marketing Library" {asset}')
    time.sleep(1.5)
    _, key = bot.click("addtolib_confirm", operation_id)
    refusal = text_of(bot.reply(key, ":warning:"))
    assert "This confirmation expired (confirmations last 1 s); nothing was added" in refusal
    assert stored(bot, operation_id).state == "expired"
    assert patches(bot.simulator) == []


def test_permission_is_checked_again_at_click_time(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(ADDTOLIB_USERGROUP_TTL="1")
    asset = free_assets(bot.simulator, SPORTS, 1)[0]
    _, operation_id = bot.preview(f"{SPORTS} {asset}", user_id=EDITOR_USER, channel_id="C0EDIT")
    assert operation_id

    bot.slack.set_usergroup(EDITORS_GROUP, [])
    time.sleep(1.1)  # let the bot's cache of the group's members expire
    _, key = bot.click("addtolib_confirm", operation_id, user_id=EDITOR_USER, channel_id="C0EDIT")
    refusal = text_of(bot.reply(key, ":warning:"))
    assert "Permission was withdrawn since the preview" in refusal
    assert f"you (<@{EDITOR_USER}>) are not named" in refusal
    operation = stored(bot, operation_id)
    assert operation.state == "denied" and "not named" in operation.denial_reason
    assert patches(bot.simulator) == []
    assert len(bot.slack.calls_of("usergroups.users.list")) >= 2
