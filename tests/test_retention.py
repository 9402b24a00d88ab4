"""Retention (docs/SPEC.md §16) on a real database: what is pruned, what is kept, and the
delivery worker pruning on its own, again and again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.core import retention
from bot.core.delivery.outbox import Outbox, Owed
from bot.core.journal import BatchJournal
from bot.core.store import OperationStore
from bot.core.tables import batches, operations, outbox
from bot.slack.delivery.rendering import Renderer
from bot.slack.delivery.worker import DeliveryWorker, delivery_client
from bot.slack_standin import SlackStandIn
from tests.ops_support import wait_until

OLD = datetime.now(UTC) - timedelta(days=31)
RECENT = datetime.now(UTC) - timedelta(days=29)


def _entry(store: OperationStore, op_id: str, state: str, at: datetime) -> int:
    Outbox(store).add([Owed("post", "event", "C1", op_id, args={"text": state})])
    with store.engine.begin() as conn:
        entry_id = conn.execute(select(func.max(outbox.c.id))).scalar_one()
        conn.execute(
            update(outbox)
            .where(outbox.c.id == entry_id)
            .values(state=state, created_at=at, updated_at=at, due_at=at)
        )
    return entry_id


def _batch(store: OperationStore, op_id: str, at: datetime) -> int:
    journal = BatchJournal(store)
    with store.engine.begin() as conn:
        conn.execute(update(operations).where(operations.c.id == op_id).values(run_token="t"))
    batch_id = journal.begin(op_id, "t", "add", 1, ["a"])
    assert batch_id is not None
    journal.finish(batch_id, "done")
    with store.engine.begin() as conn:
        conn.execute(update(batches).where(batches.c.id == batch_id).values(started_at=at))
    return batch_id


def _ids(store: OperationStore, table) -> set:
    with store.engine.connect() as conn:
        return set(conn.execute(select(table.c.id)).scalars())


@pytest.fixture
def seeded(store: OperationStore) -> dict[str, object]:
    finished = store.create(user_id="U1", state="running")
    active = store.create(user_id="U1", state="running")
    rows = {
        "old_batch": _batch(store, finished.id, OLD),
        "recent_batch": _batch(store, finished.id, RECENT),
        "active_old_batch": _batch(store, active.id, OLD),
    }
    store.transition(finished.id, "running", "done", run_token=None)
    for state in ("sent", "skipped", "failed", "queued"):
        rows[f"old_{state}"] = _entry(store, finished.id, state, OLD)
    rows["recent_sent"] = _entry(store, finished.id, "sent", RECENT)
    rows["operations"] = {finished.id, active.id}
    return rows


def test_prune_forgets_old_finished_entries_and_journals_and_keeps_operations(
    store: OperationStore, seeded: dict
) -> None:
    pruned = retention.prune(store, 30, chunk=2)  # chunks smaller than the work
    assert (pruned.outbox, pruned.batches) == (3, 1)
    assert _ids(store, outbox) == {seeded["old_queued"], seeded["recent_sent"]}
    assert _ids(store, batches) == {seeded["recent_batch"], seeded["active_old_batch"]}
    assert _ids(store, operations) == seeded["operations"]  # the audit log stays whole
    assert retention.prune(store, 30) == retention.Pruned(0, 0)  # again: nothing more


def test_the_delivery_worker_prunes_on_its_own_schedule(
    store: OperationStore, slack: SlackStandIn, seeded: dict
) -> None:
    client = delivery_client("xoxb-test", slack.url)
    worker = DeliveryWorker(
        Outbox(store), client, Renderer(), poll=0.05, retention_days=30, prune_every=0.1
    )
    worker.start()
    try:
        wait_until(lambda: seeded["old_batch"] not in _ids(store, batches), timeout=30)
        assert seeded["old_sent"] not in _ids(store, outbox)  # pruned before the journal
        # Written after the first prune, and old: a later prune takes it too.
        later = _entry(store, next(iter(seeded["operations"])), "sent", OLD)
        wait_until(lambda: later not in _ids(store, outbox), timeout=30)
    finally:
        worker.stop()
    # The old queued entry was still owed: delivered now, it is recent, and kept.
    assert {seeded["recent_sent"], seeded["old_queued"]} <= _ids(store, outbox)
    assert _ids(store, operations) == seeded["operations"]


def test_without_a_retention_nothing_is_pruned(
    store: OperationStore, slack: SlackStandIn, seeded: dict
) -> None:
    client = delivery_client("xoxb-test", slack.url)
    worker = DeliveryWorker(Outbox(store), client, Renderer(), poll=0.05, prune_every=0.01)
    worker.start()
    try:
        assert worker.wait_idle(timeout=30)  # the old queued entry delivered
    finally:
        worker.stop()
    assert seeded["old_sent"] in _ids(store, outbox)
