"""Retry over real HTTP: after a partial failure, only the failed assets are sent again."""

from __future__ import annotations

from tests.fixtures_bot import (
    MARKETING,
    OTHER,
    USER,
    Bot,
    button_value,
    free_assets,
    text_of,
    titled,
)
from tests.ops_support import add, adds, operation, thread_of, wait_reply


def test_retry_resends_only_the_failed_batch(start_bot) -> None:
    bot: Bot = start_bot(UPLYNK_BATCH_SIZE="2")
    assets = free_assets(bot.simulator, MARKETING, 6)
    # The second of three batches is refused (400 is not retried by the client).
    bot.simulator.faults.fail("add", 400, times=1, after=1)
    operation_id, summary = add(bot, f"{MARKETING} {' '.join(assets)}")

    assert adds(bot) == [assets[0:2], assets[2:4], assets[4:6]]
    text = text_of(summary)
    assert "*Failed (2):*" in text and assets[2] in text and assets[3] in text
    assert button_value(summary, "addtolib_retry") == operation_id
    assert button_value(summary, "addtolib_undo") == operation_id  # undo what did work
    stored = operation(bot, operation_id)
    assert stored.state == "partial"
    assert stored.failed_ids == assets[2:4]
    assert sorted(stored.added_ids) == sorted(assets[:2] + assets[4:])
    held = bot.simulator.catalogue.library_assets(MARKETING)
    assert not {assets[2], assets[3]} & held

    bot.simulator.clear_requests()
    _, key = bot.click("addtolib_retry", operation_id)
    updated = bot.reply(key, "Added (6)")
    assert adds(bot) == [assets[2:4]]  # only the failed ids, once
    assert updated.payload.get("replace_original") is True
    assert button_value(updated, "addtolib_retry") is None
    assert button_value(updated, "addtolib_undo") == operation_id
    assert set(assets) <= bot.simulator.catalogue.library_assets(MARKETING)
    stored = operation(bot, operation_id)
    assert (stored.state, stored.failed_ids) == ("done", [])
    assert sorted(stored.added_ids) == sorted(assets)
    assert all(stored.outcome[a] == "added" for a in assets)
    parent = thread_of(bot, operation_id)
    reply = wait_reply(bot, parent, "retried")
    assert f"<@{USER}> retried: 6 added (`done`)" in text_of(reply)
    named = ", ".join(titled(bot.simulator, a) for a in assets[2:4])
    assert f"Added now: {named}" in text_of(reply)  # the assets by title, as in the summary
    assert f"*Failed (2):* {named}" in text


def test_retry_after_a_total_failure_by_the_requester_only_and_once(start_bot) -> None:
    bot: Bot = start_bot(UPLYNK_BATCH_SIZE="2")
    assets = free_assets(bot.simulator, MARKETING, 3)
    bot.simulator.faults.fail("add", 400, times=2)
    operation_id, summary = add(bot, f"{MARKETING} {' '.join(assets)}")
    assert "Failed (3)" in text_of(summary)
    assert button_value(summary, "addtolib_undo") is None  # nothing was added
    assert operation(bot, operation_id).state == "failed"

    bot.simulator.clear_requests()
    _, key = bot.click("addtolib_retry", operation_id, user_id=OTHER)
    assert f"Only <@{USER}> (who asked) or an admin can retry" in text_of(bot.reply(key))
    assert adds(bot) == []

    _, key = bot.click("addtolib_retry", operation_id)
    bot.reply(key, "Added (3)")
    assert adds(bot) == [assets[0:2], assets[2:3]]
    assert operation(bot, operation_id).state == "done"

    _, key = bot.click("addtolib_retry", operation_id)
    assert "has already been carried out" in text_of(bot.reply(key))
    assert len(adds(bot)) == 2
