"""The batch journal: each add/remove batch recorded, under the run's token, before it is sent."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.core.tables import batches

__all__ = ["CLAIMABLE", "Batch", "BatchJournal", "batches"]

#: Entry states (table `operation_batches`, declared in store.py beside `operations`).
#: sending: recorded, not yet answered; done / failed: answered; unknown: the answer was lost
#: (timeout, dropped connection), so the request may have been applied.
BATCH_STATES = ("sending", "done", "failed", "unknown")
#: A batch in one of these states may have reached Uplynk: on resume, its ids that are in the
#: library are this operation's work. Ids from no such batch never are.
CLAIMABLE = frozenset({"sending", "done", "unknown"})


@dataclass(frozen=True)
class Batch:
    """One journal entry; ``age`` is seconds since it was recorded, by the database's clock."""

    id: int
    operation_id: str
    run_token: str
    kind: str
    number: int
    asset_ids: list[str]
    state: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    age: float


class BatchJournal:
    """Records batches in the store's database.

    The API is made for several batches of one run in flight at once, finishing in any order
    (each has its own entry), and for a run resumed by another process (entries are read by
    operation, whatever their run).
    """

    def __init__(self, store: Any):
        self.store = store

    def begin(
        self, operation_id: str, run_token: str, kind: str, number: int, asset_ids: list[str]
    ) -> int | None:
        """Record "sending batch `number` (ids)"; None if the run no longer owns the operation.

        One transaction: the fenced lease renewal locks the operation's row, so a retry that
        takes the row over either sees this entry or this run sees its token gone.
        """
        renew = self.store.renewal(operation_id, run_token)
        entry = batches.insert().values(
            operation_id=operation_id,
            run_token=run_token,
            kind=kind,
            number=number,
            asset_ids=list(asset_ids),
            state="sending",
            started_at=self.store.db_now(),
        )
        with self.store.connect(begin=True) as conn:
            if conn.execute(renew).rowcount != 1:
                return None
            return conn.execute(entry).inserted_primary_key[0]

    def finish(self, batch_id: int, state: str, error: str | None = None) -> None:
        """Record a batch's answer. Not fenced: what Uplynk did is a fact even for a stale run."""
        if state not in BATCH_STATES or state == "sending":
            raise ValueError(f"not a finished batch state: {state!r}")
        stmt = (
            batches.update()
            .where(batches.c.id == batch_id)
            .values(state=state, error=error, finished_at=self.store.db_now())
        )
        with self.store.connect(begin=True) as conn:
            conn.execute(stmt)

    def entries(self, operation_id: str, kind: str | None = None) -> list[Batch]:
        """The operation's batches, oldest first."""
        now = self.store.db_now().label("now")
        query = select(batches, now).where(batches.c.operation_id == operation_id)
        if kind is not None:
            query = query.where(batches.c.kind == kind)
        with self.store.connect(begin=False) as conn:
            rows = conn.execute(query.order_by(batches.c.id)).mappings().all()
        found = []
        for row in rows:
            values = {k: v for k, v in row.items() if k != "now"}
            values["asset_ids"] = list(values["asset_ids"] or [])
            age = (row["now"] - row["started_at"]).total_seconds()
            found.append(Batch(**values, age=age))
        return found

    def settled(
        self, operation_id: str, kind: str, run_token: str, grace: float, poll: float = 0.2
    ) -> list[Batch]:
        """The operation's batches once other runs' recent in-flight ones have answered.

        A run presumed dead may still be waiting for Uplynk's answer to its last batch; a
        resumed run waits for that answer (at most until the batch is `grace` s old) rather
        than send the same ids again. Batches left by a crash are older than that already.
        """
        while True:
            found = self.entries(operation_id, kind)
            waiting = [
                b
                for b in found
                if b.state == "sending" and b.run_token != run_token and b.age < grace
            ]
            if not waiting:
                return found
            time.sleep(min(poll, max(0.01, grace - max(b.age for b in waiting))))

    @staticmethod
    def claimable_ids(entries: Iterable[Batch], run_token: str) -> set[str]:
        """Ids that earlier runs may have sent (their batches in CLAIMABLE states)."""
        return {
            a
            for b in entries
            if b.run_token != run_token and b.state in CLAIMABLE
            for a in b.asset_ids
        }
