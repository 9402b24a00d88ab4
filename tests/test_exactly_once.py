"""Exactly once under failures: fenced runs, the batch journal, resumable undo, pick CAS."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.core.tables import operations
from tests.fixtures_bot import (
    ARCHIVE,
    MARKETING,
    NOTIFY,
    OTHER,
    USER,
    Bot,
    button_value,
    dump,
    free_assets,
    text_of,
)
from tests.ops_support import (
    add,
    adds,
    bulk_assets,
    journal,
    opened_store,
    operation,
    removes,
    wait_until,
)


def channel_summaries(bot: Bot, operation_id: str):
    return [
        c
        for c in bot.slack.calls_of("chat.postMessage")
        if c.channel != NOTIFY and c.channel != USER and operation_id in dump(c)
    ]


def test_a_run_whose_lease_expires_while_batches_are_slow_then_the_resume_adds_once(
    start_bot,
) -> None:
    # The first instance renews its lease rarely (60 s lease); the second, with a 1 s lease,
    # finds the row untouched while a slow batch is in flight and takes it back: the first
    # run is presumed dead but is only slow.
    first: Bot = start_bot(UPLYNK_BATCH_SIZE="50", ADDTOLIB_LEASE_SECONDS="60")
    assets = bulk_assets(first, 300)  # 6 batches
    first.simulator.faults.set_latency("add", 1.5)
    _, operation_id = first.preview(f"{MARKETING} {' '.join(assets)}")
    _, first_key = first.click("addtolib_confirm", operation_id)
    wait_until(lambda: len(journal(first, operation_id)) >= 2, timeout=30, every=0.1)

    second = start_bot(UPLYNK_BATCH_SIZE="50", ADDTOLIB_LEASE_SECONDS="1")
    # The second instance takes the operation back and resumes it with nobody clicking.
    dm = second.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.channel == USER and "resumed" in dump(c),
        timeout=60,
    )
    assert "resumed automatically" in text_of(dm)

    second.slack.wait_for(lambda c: c.key == first_key and "presumed stopped" in dump(c), 60)
    summary = second.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage" and c.channel == "C0GENERAL" and operation_id in dump(c)
        ),
        timeout=60,
    )
    assert "Added (300)" in text_of(summary)
    wait_until(lambda: operation(second, operation_id).state == "done", timeout=30)

    # Every asset was PATCHed exactly once, by one run or the other.
    sent = Counter(a for batch in adds(second) for a in batch)
    assert set(sent) == set(assets) and set(sent.values()) == {1}
    entries = journal(second, operation_id)
    assert len({e.run_token for e in entries}) == 2  # both runs sent batches
    assert {e.state for e in entries} == {"done"}
    # One summary, and the record matches the simulator.
    assert len(channel_summaries(second, operation_id)) == 1
    final = operation(second, operation_id)
    held = second.simulator.catalogue.library_assets(MARKETING)
    assert sorted(final.added_ids) == sorted(assets) and set(assets) <= held
    assert final.failed_ids == [] and final.run_token is None


def test_an_undo_that_fails_part_way_keeps_undo_to_remove_the_rest(start_bot) -> None:
    bot: Bot = start_bot(UPLYNK_BATCH_SIZE="100")
    assets = bulk_assets(bot, 300)
    operation_id, _ = add(bot, f"{MARKETING} {' '.join(assets)}")
    # The second DELETE batch gets 503 on every attempt (1 + 4 retries).
    bot.simulator.faults.fail("remove", 503, times=5, after=1)

    _, key = bot.click("addtolib_undo", operation_id)
    partial = bot.reply(key, "Undo removed", timeout=60)
    assert "*Undo removed 200 of 300*; 100 still in the library" in text_of(partial)
    assert button_value(partial, "addtolib_undo") == operation_id
    assert button_value(partial, "addtolib_retry") is None
    first = operation(bot, operation_id)
    assert first.state == "done" and len(first.removed_ids) == 200
    left = set(assets) - set(first.removed_ids)
    assert left == set(assets[100:200])
    assert left <= bot.simulator.catalogue.library_assets(MARKETING)
    bot.slack.wait_for(
        lambda c: c.channel == NOTIFY and "undid part of this" in dump(c) and "100 still" in dump(c)
    )

    _, key = bot.click("addtolib_undo", operation_id)
    done = bot.reply(key, "*Undone*", timeout=30)
    assert button_value(done, "addtolib_undo") is None
    final = operation(bot, operation_id)
    assert final.state == "undone" and sorted(final.removed_ids) == sorted(assets)
    assert not set(assets) & bot.simulator.catalogue.library_assets(MARKETING)
    assert sorted(removes(bot)[-1]) == sorted(left)  # only the rest was sent again
    _, key = bot.click("addtolib_undo", operation_id)
    assert "already undone" in text_of(bot.reply(key, "already"))


def test_two_concurrent_picks_give_one_preview_and_one_refusal(bot: Bot) -> None:
    assets = free_assets(bot.simulator, ARCHIVE, 2)
    choice, _ = bot.preview(f"Marketing {' '.join(assets)}")
    value = next(
        b["accessory"]["value"]
        for b in choice.payload["blocks"]
        if b.get("accessory", {}).get("action_id") == "addtolib_pick_library"
    )
    pending_id = value.partition(":")[0]

    # Confirming before a library is picked is refused clearly.
    _, key = bot.click("addtolib_confirm", pending_id)
    assert "still waiting for a library to be picked" in text_of(bot.reply(key, "waiting"))

    def pick(library_id: str) -> str:
        return bot.click("addtolib_pick_library", f"{pending_id}:{library_id}")[1]

    with ThreadPoolExecutor(max_workers=2) as pool:
        keys = list(pool.map(pick, [MARKETING, ARCHIVE]))
    wait_until(lambda: all(len(bot.replies(k)) >= 1 for k in keys))
    answers = [bot.replies(k)[-1] for k in keys]
    previews = [a for a in answers if button_value(a, "addtolib_confirm") == pending_id]
    refusals = [a for a in answers if "already picked" in text_of(a)]
    assert (len(previews), len(refusals)) == (1, 1), [text_of(a) for a in answers]
    stored = operation(bot, pending_id)
    shown = MARKETING if f"`{MARKETING}`" in text_of(previews[0]) else ARCHIVE
    assert stored.library_id == shown and stored.state == "pending"


def lease_age(bot: Bot, operation_id: str) -> float | None:
    """Seconds since the operation's lease was renewed, by the database's clock."""
    with opened_store(bot) as store, store.connect(begin=False) as conn:
        now, lease_at, state = conn.execute(
            select(store.db_now(), operations.c.lease_at, operations.c.state).where(
                operations.c.id == operation_id
            )
        ).one()
    return (now - lease_at).total_seconds() if state == "running" else None


def test_slow_interrupted_notices_never_hold_up_lease_renewals(start_bot) -> None:
    # Batches slower than the lease: only the heartbeat keeps this run's lease fresh.
    bot: Bot = start_bot(UPLYNK_BATCH_SIZE="50", ADDTOLIB_LEASE_SECONDS="2")
    assets = bulk_assets(bot, 100)
    bot.simulator.faults.set_latency("add", 2.5)
    _, running_id = bot.preview(f"{MARKETING} {' '.join(assets)}")
    bot.click("addtolib_confirm", running_id)
    wait_until(lambda: journal(bot, running_id), timeout=15, every=0.05)

    # Another instance's operation, abandoned by a crash, and a Slack that answers slowly:
    # the notices about it take seconds.
    bot.slack.set_latency("chat.postMessage", 3)
    with opened_store(bot) as store:
        abandoned = store.create(
            user_id=OTHER,
            channel_id="C0GENERAL",
            library_id=MARKETING,
            library_name="Marketing Library",
            new_ids=["0" * 32],
            state="running",
        )
        store.update(abandoned.id, lease_at=datetime.now(UTC) - timedelta(hours=1))
    # Taken back: `interrupted`, and at once resumed (a run token of its own), then finished.
    wait_until(
        lambda: (op := operation(bot, abandoned.id)).state != "running" or op.run_token,
        timeout=10,
    )
    ages = []
    while not bot.slack.calls_of("chat.postMessage") or not [
        c for c in bot.slack.calls_of("chat.postMessage") if c.channel == OTHER
    ]:
        age = lease_age(bot, running_id)
        if age is not None:
            ages.append(age)
        time.sleep(0.05)
    # While the notice was being sent (3 s and more), the running operation's lease was
    # renewed every lease/4 = 0.5 s; it never came near the 2 s lease.
    assert len(ages) > 20 and max(ages) < 1.5, max(ages)
    bot.slack.set_latency("chat.postMessage", 0)
    wait_until(lambda: operation(bot, running_id).state == "done", timeout=30)
