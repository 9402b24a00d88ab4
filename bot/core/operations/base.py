"""What the use cases share: their collaborators, and the helpers more than one of them needs."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime

from bot.core.approvals.rules import Approvals
from bot.core.journal import BatchJournal
from bot.core.operation import Operation
from bot.core.outcomes import Executed, Refused
from bot.core.policy import Policy
from bot.core.store import OperationStore
from bot.uplynk.client import UplynkClient
from bot.uplynk.errors import UplynkError, UplynkUnavailable
from bot.uplynk.models import BatchResult, Library

log = logging.getLogger(__name__)

SUPERSEDED = "this run was presumed dead and another run took the operation over"


def new_token() -> str:
    return uuid.uuid4().hex


def journal_state(batch: BatchResult) -> str:
    """done / failed, or unknown when the answer was lost and the request may have landed."""
    if batch.ok:
        return "done"
    in_doubt = isinstance(batch.error, UplynkUnavailable) and batch.error.status is None
    return "unknown" if in_doubt else "failed"


class UseCase:
    """The collaborators every use case reaches through self (Workflow sets them)."""

    store: OperationStore
    uplynk: UplynkClient
    policy: Policy
    groups_of: Callable[[str], set[str]]
    confirm_ttl: int
    undo_window: int
    now: Callable[[], datetime]
    owed: Callable[..., list]
    batch_grace: float
    journal: BatchJournal
    approvals: Approvals
    _running: dict[str, str]  # run token -> operation id
    _running_lock: threading.Lock
    _savers: ThreadPoolExecutor
    _lookups: ThreadPoolExecutor
    _stopping: threading.Event
    schedule_horizon: int
    zone_of: Callable[[str], str | None]
    # Defined by the use cases that Workflow joins (Scheduling, Running), used across them.
    when: Callable[..., tuple[datetime, str | None] | Refused]
    schedule: Callable[..., Operation | Refused]
    execute: Callable[..., Executed]

    # -- helpers of more than one use case ---------------------------------------------------

    def _load_for(self, operation_id: str, user_id: str, verb: str) -> Operation | Refused:
        """The operation a button names, if this user may act on it."""
        operation = self.store.get(operation_id) if operation_id else None
        if operation is None:
            return Refused("That button does not belong to any operation I know; nothing was done.")
        if operation.user_id != user_id and not self.policy.is_admin(user_id):
            return Refused(
                f"Only <@{operation.user_id}> (who asked) or an admin can {verb} this operation."
            )
        return operation

    @contextmanager
    def _executing(self, operation_id: str, token: str) -> Iterator[None]:
        """Mark a run as this process's while the block runs (the heartbeat renews its lease).

        Keyed by run token: a stale run of the same operation finishing late removes its own
        entry, never its replacement's (whose lease would then lapse).
        """
        with self._running_lock:
            self._running[token] = operation_id
        try:
            yield
        finally:
            with self._running_lock:
                self._running.pop(token, None)

    def _send(
        self, operation: Operation, token: str, kind: str, number: int, ids: list[str]
    ) -> BatchResult | None:
        """Journal one batch, send it, journal its answer; None if the run lost its fence."""
        entry = self.journal.begin(operation.id, token, kind, number, ids)
        if entry is None:
            return None
        assert operation.library_id is not None  # only a planned operation sends batches
        call = self.uplynk.add_assets if kind == "add" else self.uplynk.remove_assets
        batch = call(operation.library_id, ids).batches[0]  # len(ids) <= batch_size: one call
        self.journal.finish(entry, journal_state(batch))
        return batch

    def _held(self, library_id: str, ids: Iterable[str]) -> set[str]:
        """Those of `ids` Uplynk now lists in the library (one look-up; raises UplynkError)."""
        ids = list(ids)
        assets = self.uplynk.get_assets(ids)
        return {a for a in ids if a in assets and library_id in assets[a].libraries}

    def _fresh_library(self, library_id: str) -> Library | None:
        try:
            return self.uplynk.get_library(library_id)
        except UplynkError as exc:
            log.warning("could not refresh library %s: %s", library_id, exc)
            return None
