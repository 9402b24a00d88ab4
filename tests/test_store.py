"""Tests for bot.core.store: round trips, compare-and-set races and start-up recovery."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from bot.core.operation import (
    ACTIVE,
    STATES,
    TERMINAL,
    TRANSITIONS,
    Operation,
    State,
    TransitionError,
)
from bot.core.store import OperationStore

U1 = "U0123ABCD"
U2 = "U0999ZZZZ"
LIB_A = "8b69f969c65e481385281331520cf1e2"
LIB_B = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"


def make(store: OperationStore, **fields) -> Operation:
    base = {"team_id": "T1", "channel_id": "C1", "user_id": U1, "library_id": LIB_A}
    base.update(fields)
    return store.create(**base)


def race(n: int, fn) -> list:
    """Run fn(i) in n threads released at the same moment; return the results."""
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_states_constants():
    assert "interrupted" in STATES
    assert set(STATES) >= TERMINAL
    assert set(ACTIVE) == {
        "pending",
        "awaiting_approval",
        "scheduled",
        "confirmed",
        "running",
        "undoing",
    }
    assert not TERMINAL & ACTIVE


def test_schema_has_table_and_indexes(store):
    insp = inspect(store.engine)
    assert "operations" in insp.get_table_names()
    indexed = {tuple(ix["column_names"]) for ix in insp.get_indexes("operations")}
    assert ("user_id", "created_at", "id") in indexed  # history pages, newest first
    assert ("library_id", "created_at", "id") in indexed
    assert ("created_at", "id") in indexed
    assert ("state", "created_at") in indexed
    store.create_schema()  # idempotent


def test_create_and_get(store):
    op = make(store, library_name="Marketing Library", response_url="http://x/response/1")
    assert len(op.id) == 32 and int(op.id, 16) >= 0
    assert op.state == "pending"
    assert op.short_id == op.id[:8]
    assert op.created_at == op.updated_at
    assert op.confirmed_at is op.finished_at is op.undone_at is None
    assert op.requested_ids == [] and op.outcome == {} and op.errors == []
    got = store.get(op.id)
    assert got == op
    assert got.library_name == "Marketing Library"
    assert got.is_active and not got.is_terminal


def test_create_requires_user_and_known_fields(store):
    with pytest.raises(TypeError):
        store.create(team_id="T1", channel_id="C1")
    with pytest.raises(TypeError, match="bogus"):
        make(store, bogus=1)
    with pytest.raises(TypeError):
        make(store, id="0" * 32)
    with pytest.raises(ValueError):
        make(store, state="nonsense")


def test_create_in_a_finished_state(store):
    op = make(store, state="denied", denial_reason="no [[allow]] entry names this library")
    assert op.state == "denied" and op.is_terminal
    assert op.finished_at == op.created_at
    assert store.get(op.id) == op
    assert store.transition(op.id, "pending", "confirmed") is None


def test_json_fields_round_trip(store):
    op = make(
        store,
        requested_ids=("a1", "b2", "c3", "d4"),
        new_ids=["a1", "b2"],
        present_ids=["c3"],
        missing_ids=["d4"],
        outcome={"zz": "added", "a1": "failed: 500", "ü": "ok ✓"},
        errors=["batch 1: Uplynk returned 500"],
    )
    got = store.get(op.id)
    assert got.requested_ids == ["a1", "b2", "c3", "d4"]
    assert got.new_ids == ["a1", "b2"]
    assert got.present_ids == ["c3"]
    assert got.missing_ids == ["d4"]
    assert got.outcome == {"zz": "added", "a1": "failed: 500", "ü": "ok ✓"}
    assert list(got.outcome) == ["zz", "a1", "ü"]  # insertion order kept
    assert got.errors == ["batch 1: Uplynk returned 500"]
    assert got.added_ids == got.failed_ids == got.removed_ids == []

    big = [f"{i:032x}" for i in range(5000)]
    store.update(op.id, added_ids=big, outcome=dict.fromkeys(big, "added"))
    got = store.get(op.id)
    assert got.added_ids == big
    assert len(got.outcome) == 5000


def test_datetimes_are_aware_utc(store):
    op = make(store)
    assert op.created_at.tzinfo is not None
    assert op.created_at.utcoffset() == timedelta(0)
    confirmed = store.transition(op.id, "pending", "confirmed", confirmed_by=U1)
    for value in (confirmed.created_at, confirmed.updated_at, confirmed.confirmed_at):
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    got = store.get(op.id)
    assert got.created_at == op.created_at
    assert got.confirmed_at == confirmed.confirmed_at
    assert got.updated_at >= got.created_at

    # Other zones are stored as the same instant and read back in UTC.
    plus2 = timezone(timedelta(hours=2))
    when = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=plus2)
    other = make(store, created_at=when)
    got = store.get(other.id)
    assert got.created_at == when
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert got.created_at.hour == 10
    # Naive values are taken as UTC.
    naive = make(store, created_at=datetime(2024, 5, 1, 12, 0, 0))
    assert store.get(naive.id).created_at == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_transition_sets_fields_and_timestamps(store):
    op = make(store)
    confirmed = store.transition(op.id, "pending", "confirmed", confirmed_by=U2)
    assert confirmed.state == "confirmed"
    assert confirmed.confirmed_by == U2
    assert confirmed.confirmed_at is not None
    assert confirmed.updated_at >= op.updated_at
    running = store.transition(op.id, ["confirmed"], "running")
    assert running.state == "running" and running.finished_at is None
    done = store.transition(op.id, ("running",), "done", added_ids=["a1"], outcome={"a1": "added"})
    assert done.state == "done" and done.finished_at is not None
    assert done.added_ids == ["a1"] and done.outcome == {"a1": "added"}
    assert done.is_terminal
    undone = store.transition(op.id, {"done", "partial"}, "undone", undone_by=U1)
    assert undone.undone_at is not None and undone.undone_by == U1
    assert undone.finished_at == done.finished_at
    assert store.get(op.id) == undone


def test_transition_from_wrong_state_returns_none(store):
    op = make(store)
    assert store.transition(op.id, "running", "done") is None
    assert store.transition(op.id, ["confirmed", "interrupted"], "running") is None
    assert store.get(op.id).state == "pending"
    assert store.transition(op.id, "pending", "cancelled") is not None
    assert store.transition(op.id, "pending", "confirmed") is None
    assert store.get(op.id).state == "cancelled"


def test_transition_of_missing_or_malformed_id_returns_none(store):
    assert store.transition("f" * 32, "pending", "confirmed") is None
    assert store.transition("not-an-id", "pending", "confirmed") is None
    assert store.transition("", "pending", "confirmed") is None


def test_transition_validates_arguments(store):
    op = make(store)
    with pytest.raises(ValueError):
        store.transition(op.id, "pending", "nonsense")
    with pytest.raises(ValueError):
        store.transition(op.id, "bogus", "confirmed")
    with pytest.raises(ValueError):
        store.transition(op.id, [], "confirmed")
    with pytest.raises(TypeError):
        store.transition(op.id, "pending", "confirmed", state="running")
    with pytest.raises(TypeError):
        store.transition(op.id, "pending", "confirmed", nope=1)
    assert store.get(op.id).state == "pending"


def test_update_sets_fields_and_refuses_state(store):
    op = make(store)
    updated = store.update(op.id, notify_channel="C9", notify_ts="1700000000.000100")
    assert updated.notify_ts == "1700000000.000100"
    assert updated.state == "pending"
    assert updated.updated_at >= op.updated_at
    assert store.get(op.id).notify_channel == "C9"
    with pytest.raises(ValueError):
        store.update(op.id, state="done")
    with pytest.raises(TypeError):
        store.update(op.id, color="red")
    assert store.update("f" * 32, error="x") is None
    assert store.update("../etc", error="x") is None


def test_get_malformed_ids_return_none(store):
    make(store)
    for bad in ["", "abc", "X" * 32, "g" * 32, "' OR 1=1 --", "a" * 33, None, 12, "A" * 32]:
        assert store.get(bad) is None
    assert store.get("0" * 32) is None


def test_recent_newest_first_with_filters(store):
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ops = [
        make(store, user_id=U1, library_id=LIB_A, created_at=t0 + timedelta(minutes=1)),
        make(store, user_id=U2, library_id=LIB_A, created_at=t0 + timedelta(minutes=2)),
        make(store, user_id=U1, library_id=LIB_B, created_at=t0 + timedelta(minutes=3)),
        make(store, user_id=U1, library_id=LIB_A, created_at=t0 + timedelta(minutes=4)),
    ]
    store.transition(ops[0].id, "pending", "denied", denial_reason="no rule")
    store.transition(ops[1].id, "pending", "cancelled")

    def ids(found):
        return [op.id for op in found]

    assert ids(store.recent()) == [ops[3].id, ops[2].id, ops[1].id, ops[0].id]
    assert ids(store.recent(user_id=U1)) == [ops[3].id, ops[2].id, ops[0].id]
    assert ids(store.recent(library_id=LIB_A)) == [ops[3].id, ops[1].id, ops[0].id]
    assert ids(store.recent(user_id=U1, library_id=LIB_A)) == [ops[3].id, ops[0].id]
    assert ids(store.recent(limit=2)) == [ops[3].id, ops[2].id]
    assert store.recent(user_id="UNOBODY") == []
    assert store.recent(limit=0) == []
    assert {op.state for op in store.recent()} == {"pending", "denied", "cancelled"}


def test_interrupt_running(store):
    running = [make(store) for _ in range(3)]
    for op in running:
        store.transition(op.id, "pending", "confirmed")
        store.transition(op.id, "confirmed", "running")
    pending = make(store)
    done = make(store)
    store.transition(done.id, "pending", "confirmed")
    store.transition(done.id, "confirmed", "running")
    store.transition(done.id, "running", "done")

    interrupted = store.interrupt_running()
    assert sorted(op.id for op in interrupted) == sorted(op.id for op in running)
    assert all(op.state == "interrupted" and op.finished_at for op in interrupted)
    for op in running:
        assert store.get(op.id).state == "interrupted"
    assert store.get(pending.id).state == "pending"
    assert store.get(done.id).state == "done"
    assert store.interrupt_running() == []
    # An interrupted operation can be retried.
    assert store.transition(running[0].id, "interrupted", "running") is not None


def test_interrupt_running_idle_for_spares_recent_work(store):
    op = make(store)
    store.transition(op.id, "pending", "confirmed")
    store.transition(op.id, "confirmed", "running")
    assert store.interrupt_running(idle_for=timedelta(minutes=5)) == []
    # The lease, not updated_at (the writer's clock), decides.
    store.update(op.id, updated_at=datetime.now(UTC) - timedelta(minutes=10))
    assert store.interrupt_running(idle_for=timedelta(minutes=5)) == []
    store.update(op.id, lease_at=datetime.now(UTC) - timedelta(minutes=10))
    assert [o.id for o in store.interrupt_running(idle_for=timedelta(minutes=5))] == [op.id]


def test_a_lingering_confirmation_counts_as_interrupted(store):
    """Confirmed is held only for an instant before running: a stale one means a crash."""
    op = make(store)
    store.transition(op.id, "pending", "confirmed")
    assert store.interrupt_running(idle_for=timedelta(minutes=5)) == []
    store.update(op.id, lease_at=datetime.now(UTC) - timedelta(minutes=10))
    assert [o.state for o in store.interrupt_running(idle_for=timedelta(minutes=5))] == [
        "interrupted"
    ]


def test_expire_pending(store):
    now = datetime.now(UTC)
    old = make(store, created_at=now - timedelta(hours=1))
    fresh = make(store)
    old_but_confirmed = make(store, created_at=now - timedelta(hours=1))
    store.transition(old_but_confirmed.id, "pending", "confirmed")
    assert store.expire_pending(now - timedelta(minutes=15)) == 1
    assert store.get(old.id).state == "expired"
    assert store.get(fresh.id).state == "pending"
    assert store.get(old_but_confirmed.id).state == "confirmed"
    assert store.expire_pending(now - timedelta(minutes=15)) == 0


def test_twenty_threads_race_one_wins(store):
    op = make(store)
    results = race(
        20, lambda i: store.transition(op.id, "pending", "confirmed", confirmed_by=f"U{i}")
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    final = store.get(op.id)
    assert final.state == "confirmed"
    assert final.confirmed_by == winners[0].confirmed_by


def test_many_operations_raced_concurrently(store):
    """Double clicks on many operations at once: each operation is confirmed exactly once."""
    ops = [make(store) for _ in range(10)]
    results = race(20, lambda i: store.transition(ops[i % 10].id, "pending", "confirmed"))
    won = Counter(r.id for r in results if r is not None)
    assert won == Counter({op.id: 1 for op in ops})


def test_two_store_instances_race_one_winner(database_url):
    """Two engines on one database, like two server processes: one confirms, one loses."""
    first = OperationStore(database_url)
    first.create_schema()
    second = OperationStore(database_url)
    second.create_schema()  # a second process starting up is harmless
    try:
        op = make(first)
        assert second.get(op.id) == op
        stores = [first, second]
        results = race(
            20,
            lambda i: stores[i % 2].transition(
                op.id, ["pending"], "confirmed", confirmed_by=str(i)
            ),
        )
        winners = [(i, r) for i, r in enumerate(results) if r is not None]
        assert len(winners) == 1
        assert second.get(op.id).confirmed_by == str(winners[0][0])
        # Then both try to start it: still one.
        results = race(10, lambda i: stores[i % 2].transition(op.id, "confirmed", "running"))
        assert sum(r is not None for r in results) == 1
        # A restart of one instance recovers the running operation exactly once.
        recovered = race(2, lambda i: stores[i].interrupt_running())
        assert sorted(len(r) for r in recovered) == [0, 1]
    finally:
        first.dispose()
        second.dispose()


def test_operation_helpers(store):
    op = make(store, created_at=datetime.now(UTC) - timedelta(minutes=3))
    assert timedelta(minutes=2) < op.age() < timedelta(minutes=4)
    as_dict = op.to_dict()
    assert as_dict["id"] == op.id and as_dict["requested_ids"] == []
    assert Operation.from_row(as_dict) == op


def test_store_repr_hides_password():
    s = OperationStore("postgresql://bot:s3cret@db.example:5432/addtolib")
    try:
        assert "s3cret" not in repr(s)
        assert s.url.drivername == "postgresql+psycopg"
    finally:
        s.dispose()
    s = OperationStore("postgres://bot@db.example/addtolib")
    try:
        assert s.url.drivername == "postgresql+psycopg"
    finally:
        s.dispose()


def test_in_memory_sqlite_is_shared_between_threads():
    with OperationStore("sqlite://") as mem:
        mem.create_schema()
        op = mem.create(user_id=U1)
        results = race(8, lambda i: mem.transition(op.id, "pending", "cancelled"))
        assert sum(r is not None for r in results) == 1
        assert mem.get(op.id).state == "cancelled"


def test_a_transition_the_table_does_not_allow_raises_before_touching_the_row(store):
    op = make(store)
    with pytest.raises(TransitionError):
        store.transition(op.id, "pending", "running")
    with pytest.raises(TransitionError):
        store.transition(op.id, ["pending", "done"], "confirmed")  # done -> confirmed is not one
    assert store.get(op.id).state == "pending"
    assert State.RUNNING in TRANSITIONS[State.CONFIRMED]
    for final in ("cancelled", "expired", "denied", "undone", "rejected"):
        assert TRANSITIONS[State(final)] == frozenset()
