"""The outbox core on a real database: same-transaction queueing, lanes, leases, retries."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.core.delivery.outbox import SUMMARY, Outbox, Owed
from bot.core.store import OperationStore
from bot.core.tables import outbox
from bot.slack.delivery.pacing import Pacer
from tests.ops_support import wait_until


def _post(op_id: str | None, template: str = "event", **kw) -> Owed:
    return Owed("post", template, channel="C1", operation_id=op_id, **kw)


def test_a_transition_queues_its_entries_only_when_it_wins(store: OperationStore) -> None:
    op = store.create(user_id="U1")
    won = store.transition(op.id, "pending", "confirmed", enqueue=[_post(op.id), _post(op.id)])
    lost = store.transition(op.id, "pending", "cancelled", enqueue=[_post(op.id, "summary")])
    assert won is not None and lost is None
    assert [e.template for e in Outbox(store).entries(op.id)] == ["event", "event"]


def test_entries_and_state_change_commit_together(store: OperationStore) -> None:
    op = store.create(user_id="U1")
    unstorable = Owed("post", "event", "C1", op.id, args={"x": object()})
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for bad JSON
        store.transition(op.id, "pending", "confirmed", enqueue=[unstorable])
    assert store.get(op.id).state == "pending"  # rolled back with the failed insert
    assert Outbox(store).entries(op.id) == []


def test_update_and_interrupt_queue_in_the_same_transaction(store: OperationStore) -> None:
    op = store.create(user_id="U1", state="running")
    store.update(op.id, removed_ids=["a"], enqueue=[_post(op.id)])
    found = store.interrupt_running(owed=lambda o: [Owed("dm", "interrupted", o.user_id, o.id)])
    assert [o.id for o in found] == [op.id]
    assert [(e.kind, e.channel) for e in Outbox(store).entries(op.id)] == [
        ("post", "C1"),
        ("dm", "U1"),
    ]


def test_one_operation_is_delivered_in_order_other_lanes_in_parallel(
    store: OperationStore,
) -> None:
    box = Outbox(store)
    box.add([_post("a" * 32, "first"), _post("a" * 32, "second"), _post("b" * 32, "other")])
    heads = {e.template for e in box.candidates()}
    assert heads == {"first", "other"}
    first = next(e for e in box.candidates() if e.template == "first")
    claimed = box.claim(first.id)
    assert claimed is not None and claimed.state == "sending"
    # While the first is being sent, the second waits for it.
    assert {e.template for e in box.candidates()} == {"other"}
    assert box.sent(claimed, "C1", "1.000100", None)
    assert {e.template for e in box.candidates()} == {"second", "other"}


def test_a_claim_is_a_compare_and_set_and_completion_is_fenced(store: OperationStore) -> None:
    box = Outbox(store)
    box.add([_post(None)])
    entry = box.candidates()[0]
    mine = box.claim(entry.id)
    assert mine is not None and box.claim(entry.id) is None
    stale = mine.__class__(**{**mine.__dict__, "lease_token": "someone-else"})
    assert not box.sent(stale, "C1", "1.1", None)  # not the holder of the lease
    assert box.sent(mine, "C1", "1.1", None)
    assert box.claim(entry.id) is None and box.candidates() == []


def test_an_expired_lease_is_retaken_once_and_counted_as_a_lost_answer(
    store: OperationStore,
) -> None:
    box = Outbox(store, lease_seconds=0.2)
    box.add([_post(None)])
    first = box.claim(box.candidates()[0].id)
    assert box.calling(first)  # the sender died mid-call: its post may have landed
    again = wait_until(lambda: box.claim(first.id), timeout=10)
    assert again.lost == 1 and again.attempts == 2
    state = box.retry_later(again, 0, "timed out", lost=True, deadline=3600)
    assert state == "failed"  # a second lost answer: never a third copy
    assert "answer lost twice" in box.get(first.id).error


def test_a_claim_taken_over_before_its_call_lost_nothing_and_its_holder_posts_nothing(
    store: OperationStore,
) -> None:
    box = Outbox(store, lease_seconds=0.2)
    box.add([_post(None)])
    stale = box.claim(box.candidates()[0].id)  # its holder stalls before calling Slack
    taken = wait_until(lambda: box.claim(stale.id), timeout=10)
    assert taken.lost == 0 and taken.attempts == 2  # no call was made: nothing was lost
    assert not box.calling(stale) and not box.renew(stale)  # the fence: the stale one posts nothing
    assert not box.sent(stale, "C1", "1.1")  # nor records a result
    assert box.calling(taken) and box.sent(taken, "C1", "2.2")
    done = box.get(taken.id)
    assert (done.state, done.result_ts, done.lost, done.calling_at) == ("sent", "2.2", 0, None)


def test_a_renewed_claim_is_never_taken_over(store: OperationStore) -> None:
    box = Outbox(store, lease_seconds=0.3)
    box.add([_post(None)])
    held = box.claim(box.candidates()[0].id)
    assert box.calling(held)
    deadline = time.monotonic() + 1.5  # five leases
    while time.monotonic() < deadline:
        assert box.renew(held)
        assert box.claim(held.id) is None
        time.sleep(0.05)  # the renewal's pace (a sixth of the lease), not a wait for an outcome
    assert box.sent(held, "C1", "1.1") and box.get(held.id).lost == 0


def test_queuing_a_summary_marks_the_operation(store: OperationStore) -> None:
    op = store.create(user_id="U1")
    assert op.summary_queued_at is None
    store.transition(op.id, "pending", "confirmed", enqueue=[_post(op.id, key="x")])
    assert store.get(op.id).summary_queued_at is None
    store.update(op.id, enqueue=[_post(op.id, "summary", key=SUMMARY)])
    marked = store.get(op.id).summary_queued_at
    assert marked is not None
    Outbox(store).add([_post(op.id, "summary", key=SUMMARY)])
    assert store.get(op.id).summary_queued_at == marked  # the first one's time is kept


def test_transient_failures_retry_until_the_delivery_timeout(store: OperationStore) -> None:
    box = Outbox(store)
    box.add([_post(None)])
    entry = box.claim(box.candidates()[0].id)
    assert box.retry_later(entry, 0, "HTTP 503", deadline=3600) == "queued"
    assert box.get(entry.id).error == "HTTP 503"
    entry = box.claim(entry.id)
    with store.engine.begin() as conn:  # an entry queued two hours ago
        old = entry.created_at - timedelta(hours=2)
        conn.execute(update(outbox).where(outbox.c.id == entry.id).values(created_at=old))
    entry = entry.__class__(**{**entry.__dict__, "created_at": old})
    assert box.retry_later(entry, 1, "HTTP 503", deadline=3600) == "failed"
    assert box.get(entry.id).error.startswith("gave up after 3600 s: HTTP 503")
    assert box.candidates() == []
    assert any("could not be delivered" in p for p in box.problems())


def test_two_instances_racing_claim_each_entry_once(database_url: str) -> None:
    setup = OperationStore(database_url)
    setup.create_schema()
    Outbox(setup).add([_post(f"{n:032x}") for n in range(60)])
    stores = [OperationStore(database_url) for _ in range(2)]  # two processes' engines
    claimed: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(6)

    def sender(box: Outbox) -> None:
        start.wait()
        for entry in box.candidates():
            got = box.claim(entry.id)
            if got is not None:
                with lock:
                    claimed[got.id] += 1
                box.sent(got, "C1", f"{got.id}.0", None)

    try:
        threads = [threading.Thread(target=sender, args=(Outbox(stores[n % 2]),)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(claimed) == [e.id for e in Outbox(setup).entries()]
        assert set(claimed.values()) == {1}
    finally:
        for s in (*stores, setup):
            s.dispose()


def test_stats_show_depth_and_oldest_entry(store: OperationStore) -> None:
    box = Outbox(store)
    assert box.stats().depth == 0 and box.stats().oldest_age == 0
    box.add([_post(None), _post(None)])
    time.sleep(0.05)
    stats = box.stats()
    assert stats.depth == 2 and stats.oldest_age > 0 and stats.by_state == {"queued": 2}
    assert box.problems(older_than=0.01)[0].startswith("2 Slack message(s) waiting")
    assert box.problems(older_than=60) == []


def test_pacer_allows_a_burst_then_one_a_second_and_holds_after_429() -> None:
    now = [100.0]
    pacer = Pacer(rate=1.0, burst=4, clock=lambda: now[0])
    assert [pacer.take("C1") for _ in range(5)] == [True, True, True, True, False]
    assert pacer.wait_time("C1") == pytest.approx(1.0)
    assert pacer.take("C2")  # another channel has its own bucket
    now[0] += 1.0
    assert pacer.take("C1") and not pacer.take("C1")
    pacer.hold("C1", 3)
    now[0] += 2.9
    assert pacer.wait_time("C1") > 0
    now[0] += 0.1
    assert pacer.take("C1")
