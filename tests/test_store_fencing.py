"""Fencing in the store: run tokens, leases on the database's clock, the batch journal."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from bot.core.journal import BatchJournal
from bot.core.store import OperationStore

U1 = "U0FENCE"


def running(store: OperationStore, token: str):
    op = store.create(user_id=U1, library_id="a" * 32, new_ids=["11111111", "22222222"])
    store.transition(op.id, "pending", "confirmed")
    return store.transition(op.id, "confirmed", "running", run_token=token)


def test_a_run_start_takes_a_lease_from_the_database_clock(store: OperationStore) -> None:
    op = running(store, "t1")
    assert op.run_token == "t1" and op.lease_at is not None
    # Written by the database, read back as an aware UTC datetime close to ours.
    assert abs(op.lease_at - datetime.now(UTC)) < timedelta(seconds=5)


def test_progress_saves_touches_and_the_final_transition_require_the_token(
    store: OperationStore,
) -> None:
    op = running(store, "t1")
    assert store.save(op.id, run_token="t1", added_ids=["11111111"])
    assert store.touch(op.id, "t1")
    # A retry takes the row over (after the sweep): the first run is fenced out.
    store.update(op.id, lease_at=datetime.now(UTC) - timedelta(hours=1))
    assert [o.id for o in store.interrupt_running(idle_for=timedelta(seconds=60))] == [op.id]
    assert store.get(op.id).run_token is None
    assert not store.touch(op.id, "t1")
    assert not store.save(op.id, run_token="t1", added_ids=["bogus000"])
    assert store.transition(op.id, "interrupted", "running", run_token="t2") is not None
    assert not store.save(op.id, run_token="t1", added_ids=["bogus000"])
    assert store.transition(op.id, "running", "done", require={"run_token": "t1"}) is None
    assert store.get(op.id).added_ids == ["11111111"]
    assert store.save(op.id, run_token="t2", added_ids=["11111111", "22222222"])
    done = store.transition(op.id, "running", "done", require={"run_token": "t2"}, run_token=None)
    assert done is not None and done.added_ids == ["11111111", "22222222"]


def test_a_fresh_lease_is_not_swept_whatever_updated_at_says(store: OperationStore) -> None:
    # updated_at comes from the writer's clock; a writer whose clock is an hour slow must not
    # make its live run look abandoned.
    op = running(store, "t1")
    store.update(op.id, updated_at=datetime.now(UTC) - timedelta(hours=1))
    assert store.interrupt_running(idle_for=timedelta(seconds=60)) == []
    assert store.touch(op.id, "t1")


def test_a_swept_undo_returns_to_its_state_with_the_token_cleared(store: OperationStore) -> None:
    op = running(store, "t1")
    store.transition(op.id, "running", "partial", added_ids=["11111111"], failed_ids=["22222222"])
    undoing = store.transition(op.id, "partial", "undoing", run_token="u1", undo_from="partial")
    assert undoing.lease_at is not None
    store.update(op.id, lease_at=datetime.now(UTC) - timedelta(hours=1))
    [back] = store.interrupt_running(idle_for=timedelta(seconds=60))
    assert (back.state, back.run_token) == ("partial", None)


def test_journal_entries_are_fenced_and_answers_are_facts(store: OperationStore) -> None:
    journal = BatchJournal(store)
    op = running(store, "t1")
    first = journal.begin(op.id, "t1", "add", 1, ["11111111"])
    assert first is not None
    assert journal.begin(op.id, "other", "add", 2, ["22222222"]) is None
    store.transition(op.id, "running", "interrupted", run_token=None)
    assert journal.begin(op.id, "t1", "add", 2, ["22222222"]) is None
    journal.finish(first, "done")  # the stale run's answer is still recorded
    [entry] = journal.entries(op.id, "add")
    assert (entry.number, entry.asset_ids, entry.state) == (1, ["11111111"], "done")
    assert journal.claimable_ids([entry], "t2") == {"11111111"}
    assert journal.claimable_ids([entry], "t1") == set()


def test_a_resumed_run_waits_for_an_earlier_runs_batch_in_flight(store: OperationStore) -> None:
    journal = BatchJournal(store)
    op = running(store, "t1")
    entry = journal.begin(op.id, "t1", "add", 1, ["11111111"])
    answered = threading.Timer(0.5, journal.finish, (entry, "done"))
    answered.start()
    settled = journal.settled(op.id, "add", "t2", grace=30)
    assert [e.state for e in settled] == ["done"]
    # One left by a crash long ago is not waited for.
    old = journal.begin(op.id, "t1", "add", 2, ["22222222"])
    assert old is not None
    assert [e.state for e in journal.settled(op.id, "add", "t2", grace=0)] == ["done", "sending"]
