"""Notification threads over real HTTP: a parent message per operation, its events as replies."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.delivery.outbox import Outbox
from tests.fixtures_bot import MARKETING, NOTIFY, USER, Bot, free_assets, text_of
from tests.ops_support import (
    add,
    adds,
    notify_posts,
    opened_store,
    operation,
    replies,
    thread_of,
    wait_reply,
)


def test_thread_parent_details_and_later_events_reply_in_it(bot: Bot) -> None:
    new = free_assets(bot.simulator, MARKETING, 2)
    present = sorted(bot.simulator.catalogue.library_assets(MARKETING))[0]
    operation_id, _ = add(bot, f'"Marketing Library" {new[0]} {new[1]} {present}')

    parent = thread_of(bot, operation_id)
    assert "thread_ts" not in parent.payload
    assert f"<@{USER}> added 2 assets to *Marketing Library*" in text_of(parent)
    details = replies(bot, parent)
    assert len(details) == 1
    detail = text_of(details[0])
    assert operation_id in detail and "*done*" in detail
    assert all(asset in detail for asset in new)
    assert f"Already present: Summer Sale Teaser (`{present}`)" in detail
    stored = operation(bot, operation_id)
    assert (stored.notify_channel, stored.notify_ts) == (NOTIFY, parent.ts)

    bot.click("addtolib_undo", operation_id)
    undone = wait_reply(bot, parent, "undid this")
    assert undone.payload["thread_ts"] == parent.ts
    assert f"<@{USER}> undid this" in text_of(undone) and new[0] in text_of(undone)
    # Later events go to the stored thread: still one parent, now two replies.
    assert [c.ts for c in notify_posts(bot) if "thread_ts" not in c.payload] == [parent.ts]
    assert len(replies(bot, parent)) == 2


def test_failing_to_post_the_notification_is_reported_and_harmless(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(process=True)  # its log is read
    bot.slack.fail("chat.postMessage", "not_in_channel", channel=NOTIFY)
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    _, operation_id = bot.preview(f"{MARKETING} {asset}")
    bot.click("addtolib_confirm", operation_id)

    told = bot.slack.wait_for(
        lambda c: c.method == "chat.postEphemeral" and "not_in_channel" in c.text
    )
    assert told.payload["user"] == USER and told.channel == "C0GENERAL"
    assert f"<#{NOTIFY}>" in told.text and "The change was made" in told.text
    # The summary still reached the channel and the change was made once, never repeated.
    assert bot.summary(operation_id).channel == "C0GENERAL"
    assert adds(bot) == [[asset]]
    assert asset in bot.simulator.catalogue.library_assets(MARKETING)
    stored = operation(bot, operation_id)
    assert stored.state == "done" and stored.added_ids == [asset]
    assert stored.notify_ts is None
    refused = [c for c in bot.slack.calls_of("chat.postMessage") if c.rejected]
    assert [c.channel for c in refused] == [NOTIFY]
    assert f"could not deliver notify_parent for operation {operation_id}" in bot.process.output()
    assert "not_in_channel" in bot.process.output()
    with opened_store(bot) as store:  # recorded with its reason, never retried
        parent = [e for e in Outbox(store).entries(operation_id) if e.key == "notify"]
    assert [(e.state, e.error, e.attempts) for e in parent] == [("failed", "not_in_channel", 1)]
