"""Scheduled operations in the store: claim the due, expire the missed (the database's clock)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot import metrics
from bot.core.delivery.outbox import insert_owed
from bot.core.operation import Operation, State, check_transition
from bot.core.store import OperationStore
from bot.core.tables import operations

__all__ = ["ScheduleStore"]


class ScheduleStore:
    """Compare-and-set moves out of `scheduled`, many rows at a time (docs/SPEC.md §15).

    `ahead` (seconds) moves the clock forward: the console's `wait`; 0 in serve/socket modes,
    where the database's clock alone decides what is due.
    """

    def __init__(self, store: OperationStore) -> None:
        self.store = store

    def clock(self, ahead: float = 0.0, minus: float = 0.0) -> Any:
        return self.store.db_now(minus - ahead)

    def claim_due(self, limit: int, grace: float, ahead: float = 0.0) -> list[Operation]:
        """scheduled -> confirmed for up to `limit` operations whose time has come (and was
        missed by less than `grace` seconds); each row is claimed by one caller only."""
        check_transition((State.SCHEDULED,), State.CONFIRMED)
        now = self.clock(ahead)
        due = (
            operations.c.state == State.SCHEDULED,
            operations.c.run_at <= now,
            operations.c.run_at >= self.clock(ahead, grace),
        )
        oldest = select(operations.c.id).where(*due).order_by(operations.c.run_at).limit(limit)
        stmt = (
            operations.update()
            .where(operations.c.id.in_(oldest.scalar_subquery()), *due)
            .values(
                state=State.CONFIRMED,
                lease_at=self.store.db_now(),
                started_at=now,
                updated_at=datetime.now(UTC),
            )
            .returning(*operations.c)
        )
        with self.store.connection(begin=True) as conn:
            rows = conn.execute(stmt).mappings().all()
        claimed = sorted((Operation.from_row(r) for r in rows), key=lambda o: (o.run_at, o.id))
        for operation in claimed:
            if operation.run_at and operation.started_at:
                late = (operation.started_at - operation.run_at).total_seconds()
                metrics.SCHEDULE_LATENESS.observe(max(0.0, late))
        return claimed

    def expire_missed(
        self,
        grace: float,
        ahead: float = 0.0,
        owed: Callable[[Operation], Iterable[Any]] | None = None,
    ) -> list[Operation]:
        """scheduled -> expired for operations whose time passed more than `grace` seconds ago
        (no instance was running then); `owed(operation)` is queued in the same transaction."""
        check_transition((State.SCHEDULED,), State.EXPIRED)
        now = datetime.now(UTC)
        stmt = (
            operations.update()
            .where(
                operations.c.state == State.SCHEDULED,
                operations.c.run_at < self.clock(ahead, grace),
            )
            .values(state=State.EXPIRED, updated_at=now, finished_at=now)
            .returning(*operations.c)
        )
        with self.store.connection(begin=True) as conn:
            expired = [Operation.from_row(r) for r in conn.execute(stmt).mappings().all()]
            entries = [e for op in expired for e in (owed(op) if owed else ())]
            queued = insert_owed(conn, entries) if entries else 0
        if queued:
            self.store.notify_enqueued()
        metrics.operation_finished(State.EXPIRED, len(expired))
        return expired

    def next_due_in(self, ahead: float = 0.0) -> timedelta | None:
        """How long until the earliest scheduled operation is due (by the database's clock);
        None when nothing is scheduled."""
        query = select(func.min(operations.c.run_at), self.clock(ahead)).where(
            operations.c.state == State.SCHEDULED
        )
        with self.store.connection(begin=False) as conn:
            first, now = conn.execute(query).one()
        if first is None:
            return None
        if isinstance(now, str):  # SQLite's clock text, as stored times are
            now = datetime.fromisoformat(now)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        if first.tzinfo is None:
            first = first.replace(tzinfo=UTC)
        return first - now
