"""Approval requests and their updates go through the outbox (SPEC 7 with SPEC 12): held to
the approval channel's post limit, kept through a Slack outage, delivered once each, in order."""

from __future__ import annotations

from collections.abc import Callable

from tests.fixtures_bot import (
    AD_BREAKS,
    NOTIFY,
    USER,
    Bot,
    dump,
    free_assets,
    patches,
    stored,
    text_of,
)
from tests.test_e2e_approvals import APPROVALS, LEAD, SOURCE, current, has_buttons, summary
from tests.test_e2e_approvals import start as start

OUTAGE = 2  # seconds: long enough for every first attempt (and a retry or two) to meet it
ASKED = 3
# Time as a parameter: the bot and the stand-in's approval channel both at RATE posts a second,
# retries BACKOFF s apart at first (production: one post a second, a second's back-off).
RATE = 5.0
BACKOFF = 0.1


def request_posts(bot: Bot, operation_id: str, ok: bool | None = True) -> list:
    """Posts of this operation's approval request to the approval channel."""
    return [
        c
        for c in bot.slack.calls_of("chat.postMessage", ok=ok)
        if c.channel == APPROVALS and f"operation `{operation_id}`" in dump(c)
    ]


def updates_of(bot: Bot, ts: str) -> list:
    return [c for c in bot.slack.calls_of("chat.update", ok=True) if c.payload.get("ts") == ts]


def test_requests_and_updates_owed_during_an_outage_arrive_once_each_in_order(
    start: Callable[..., Bot],
) -> None:
    bot = start(ADDTOLIB_POST_RATE=str(RATE), ADDTOLIB_DELIVERY_BACKOFF=str(BACKOFF))
    bot.slack.limit_posts(rate=RATE, burst=1, retry_after=1 / RATE)  # RATE posts a second
    previews = [
        (bot.preview(f"{AD_BREAKS} {asset}")[1], [asset])
        for asset in free_assets(bot.simulator, AD_BREAKS, ASKED)
    ]
    bot.slack.outage(OUTAGE)  # then Slack's Web API is down while they are asked and approved
    asked = []
    for operation_id, assets in previews:
        _, key = bot.click("addtolib_confirm", operation_id)
        bot.reply(key, "Waiting for approval")
        asked.append((operation_id, key, assets))
    for operation_id, _, _ in asked:
        bot.click("addtolib_approve", operation_id, user_id=LEAD)
    bot.slack.wait_until(lambda: all(stored(bot, o).state == "done" for o, _, _ in asked))
    # The requests were tried during the outage and refused; nothing reached the channel.
    bot.slack.wait_until(lambda: all(request_posts(bot, o, ok=False) for o, _, _ in asked))
    refused = {c.error for o, _, _ in asked for c in request_posts(bot, o, ok=False)}
    assert "service_unavailable" in refused, refused

    for operation_id, key, assets in asked:
        # After the request's update in the operation's lane. Deliveries that met the outage
        # back off (up to 30 BACKOFF between tries) and then go at the channel's pace.
        summary(bot, operation_id, timeout=60)
        assert stored(bot, operation_id).state == "done"
        assert set(assets) <= bot.simulator.catalogue.library_assets(AD_BREAKS)
        assert "Added 1 asset" in text_of(bot.reply(key, "Added 1 asset"))
        [posted] = request_posts(bot, operation_id)  # once
        # Rendered when delivered, from what is stored: it already shows the decision.
        assert f"Approved by <@{LEAD}>" in dump(posted)
        [update] = updates_of(bot, posted.ts)  # once, and after the post it updates
        assert update.at >= posted.at and bot.slack.calls.index(update) > bot.slack.calls.index(
            posted
        )
        assert f"Approved by <@{LEAD}>" in dump(update) and not has_buttons(update.payload)
        assert not has_buttons(current(bot, APPROVALS, posted.ts))
        # The thread's parent, posted while it waited for approval, now reads as executed.
        notify_ts = stored(bot, operation_id).notify_ts
        parent = bot.slack.wait_until(
            lambda ts=notify_ts: [c for c in updates_of(bot, ts) if "added 1 asset" in dump(c)],
            timeout=60,
        )
        assert "needs approval" not in dump(parent[-1])
        assert "needs approval" not in str(current(bot, NOTIFY, notify_ts))
    assert len(patches(bot.simulator)) == ASKED


def test_a_denial_reaches_the_requester_by_dm_once_their_response_url_is_gone(
    start: Callable[..., Bot],
) -> None:
    bot = start()
    (asset,) = free_assets(bot.simulator, AD_BREAKS, 1)
    _, operation_id = bot.preview(f"{AD_BREAKS} {asset}")
    _, key = bot.click("addtolib_confirm", operation_id)
    bot.reply(key, "Waiting for approval")
    bot.slack.fail("response_url", "expired_url", times=1)  # Slack's 30 minutes are over
    bot.click("addtolib_deny", operation_id, user_id=LEAD)
    told = bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.channel == USER
            and c.ok
            and "denied your request" in dump(c)
        )
    )
    assert f"<@{LEAD}> denied your request" in text_of(told)
    # The thread's story and the parent's update come after it in the operation's queue.
    notify_ts = stored(bot, operation_id).notify_ts
    bot.slack.wait_until(lambda: [c for c in updates_of(bot, notify_ts) if "denied by" in dump(c)])
    dms = [c for c in bot.slack.calls_of("chat.postMessage", ok=True) if c.channel == USER]
    assert dms == [told]  # once
    tried = [c for c in bot.slack.calls_of("response_url") if c.key == key and c.rejected]
    assert [c.error for c in tried] == ["expired_url"]
    assert stored(bot, operation_id).state == "rejected" and patches(bot.simulator) == []


def test_a_request_the_approval_channel_refuses_is_reported_to_the_requester(
    start: Callable[..., Bot],
) -> None:
    bot = start()
    bot.slack.fail("chat.postMessage", "channel_not_found", channel=APPROVALS)
    (asset,) = free_assets(bot.simulator, AD_BREAKS, 1)
    _, operation_id = bot.preview(f"{AD_BREAKS} {asset}")
    bot.click("addtolib_confirm", operation_id)
    told = bot.slack.wait_for(
        lambda c: c.method == "chat.postEphemeral" and "approval request" in dump(c)
    )
    assert told.payload["user"] == USER and told.payload["channel"] == SOURCE
    assert f"<#{APPROVALS}> (channel_not_found)" in text_of(told)
    tried = [c for c in bot.slack.calls_of("chat.postMessage") if c.channel == APPROVALS]
    assert [c.error for c in tried] == ["channel_not_found"]  # a permanent error: not retried
    assert stored(bot, operation_id).state == "awaiting_approval" and patches(bot.simulator) == []
