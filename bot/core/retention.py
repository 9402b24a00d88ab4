"""Retention (docs/SPEC.md §16): finished outbox entries and old batch journals are pruned."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, select

from bot.core.delivery.outbox import DONE
from bot.core.operation import ACTIVE
from bot.core.tables import batches, operations, outbox

if TYPE_CHECKING:
    from bot.core.store import OperationStore

log = logging.getLogger(__name__)

#: Rows deleted per transaction: each one holds the write lock briefly (SQLite has only one).
CHUNK = 5000


@dataclass(frozen=True)
class Pruned:
    outbox: int
    batches: int


def prune(store: OperationStore, retention_days: float, chunk: int = CHUNK) -> Pruned:
    """Delete outbox entries delivered, skipped or failed, and journal batches of operations
    no longer in progress, older than `retention_days`. Operations are kept (the audit log).

    Chunked, each chunk a transaction of its own; any instance may run it at any time (two at
    once delete disjoint or already deleted rows).
    """
    with store.connect(begin=False) as conn:  # by the database's clock, fixed for this prune
        cutoff = conn.execute(select(store.db_now(retention_days * 86400))).scalar_one()
    done_entries = select(outbox.c.id).where(outbox.c.state.in_(DONE), outbox.c.updated_at < cutoff)
    # A batch of an operation still active is part of its run's fence (bot.core.journal).
    active = exists().where(
        operations.c.id == batches.c.operation_id, operations.c.state.in_(list(ACTIVE))
    )
    old_batches = select(batches.c.id).where(batches.c.started_at < cutoff, ~active)
    found = Pruned(
        outbox=_in_chunks(store, outbox, done_entries, chunk),
        batches=_in_chunks(store, batches, old_batches, chunk),
    )
    if found.outbox or found.batches:
        log.info(
            "pruned %d outbox entries and %d journal batches older than %g days",
            found.outbox,
            found.batches,
            retention_days,
        )
    return found


def _in_chunks(store: OperationStore, table: Any, ids: Any, chunk: int) -> int:
    total = 0
    while True:
        with store.connect(begin=True) as conn:
            doomed = ids.limit(chunk).scalar_subquery()
            count = conn.execute(delete(table).where(table.c.id.in_(doomed))).rowcount
        total += count
        if count < chunk:
            return total
