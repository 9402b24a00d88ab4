"""Keeps this process's running operations alive in the store and sweeps up abandoned ones."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from bot.core.approvals.outcomes import ApprovalEvent
from bot.core.operation import Operation
from bot.core.workflow import Workflow

log = logging.getLogger(__name__)


class Heartbeat:
    """A lease: a running operation is touched every lease/4 s by the process running it.

    One left untouched for a whole lease (by the database's clock) belongs to a process that
    died; any instance's sweep marks it interrupted (a compare-and-set, so exactly one
    instance reports it). ``on_interrupted`` must not block: reports belong on a work pool.
    """

    def __init__(
        self,
        workflow: Workflow,
        lease_seconds: float,
        on_interrupted: Callable[[list[Operation]], object],
        on_expired: Callable[[list[ApprovalEvent]], object] | None = None,
        after_sweep: Callable[[], object] | None = None,
    ):
        self.workflow = workflow
        self.lease = timedelta(seconds=lease_seconds)
        self.on_interrupted = on_interrupted
        self.on_expired = on_expired
        # E.g. completing the Workflow Builder steps of operations a bulk expiry ended.
        self.after_sweep = after_sweep
        self._stop = threading.Event()
        # Cleared while shutting down: keep our own leases, but take over nobody's work.
        self._sweeping = threading.Event()
        self._sweeping.set()

    def start(self, *, sweep_now: bool = False) -> Heartbeat:
        """Beat every lease/4 s on a thread; with `sweep_now`, the first beat runs here."""
        if sweep_now:
            self._beat_safely()
        thread = threading.Thread(
            target=self._run, args=(not sweep_now,), name="addtolib-heartbeat", daemon=True
        )
        thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def stop_sweeping(self) -> None:
        """A process shutting down still touches its running operations, but sweeps no more:
        what it leaves behind is for the next instance to take over."""
        self._sweeping.clear()

    def beat(self) -> list[Operation]:
        """Touch our running operations, then sweep; returns the ones found abandoned."""
        for token, operation_id in self.workflow.running_tokens().items():
            # Fenced: a run whose lease was already taken back is not revived.
            if not self.workflow.store.touch(operation_id, token):
                log.warning("operation %s is no longer ours; not renewing its lease", operation_id)
        if not self._sweeping.is_set():
            return []
        found = self.workflow.recover(idle_for=self.lease)
        self.workflow.expire_stale_previews()
        expired = self.workflow.approvals.expire_stale()  # approval requests past their TTL
        if expired and self.on_expired is not None:
            self.on_expired(expired)
        if self.after_sweep is not None:
            self.after_sweep()
        if found:
            self.on_interrupted(found)
        return found

    def _beat_safely(self) -> None:
        try:
            self.beat()
        except Exception:
            log.exception("heartbeat failed; will try again")

    def _run(self, beat_first: bool) -> None:
        if beat_first:
            self._beat_safely()
        while not self._stop.wait(self.lease.total_seconds() / 4):
            self._beat_safely()
