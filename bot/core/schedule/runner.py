"""The loop that starts scheduled adds at their time, from any live instance (docs/SPEC.md §15)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.core.operation import Operation
from bot.core.operations.scheduled import CLAIM_BATCH
from bot.core.workflow import Workflow

log = logging.getLogger(__name__)

#: The shortest wait between looks, whatever ADDTOLIB_SCHEDULE_POLL says.
MIN_WAIT = 0.02


class ScheduleRunner:
    """Every `poll` seconds (sooner when the next time is nearer), claim what is due.

    The claim is a compare-and-set in the database (scheduled -> confirmed, leased), so
    instances looking at once claim each operation once; `on_due(operations)` must not block:
    the runs belong on a work pool.
    """

    def __init__(
        self, workflow: Workflow, poll: float, on_due: Callable[[list[Operation]], None]
    ) -> None:
        self.workflow = workflow
        self.poll = max(MIN_WAIT, poll)
        self.on_due = on_due
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ScheduleRunner:
        self._thread = threading.Thread(target=self._run, name="addtolib-schedule", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more claims (shutting down): what is due is left for another instance."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look now (the console's clock moved)."""
        self._wake.set()

    def look(self) -> list[Operation]:
        """One look: expire the missed, claim the due and hand them to on_due."""
        claimed = self.workflow.due()
        if claimed:
            log.info("%d scheduled operation(s) due; running them", len(claimed))
            self.on_due(claimed)
        return claimed

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if len(self.look()) >= CLAIM_BATCH:
                    continue  # more are due: claim them now
                wait = self._until_next()
            except Exception:
                log.exception("looking for scheduled operations failed; will try again")
                wait = self.poll
            self._wake.wait(wait)
            self._wake.clear()

    def _until_next(self) -> float:
        due_in = self.workflow.schedules.next_due_in(self.workflow.clock_ahead())
        if due_in is None:
            return self.poll
        return min(self.poll, max(MIN_WAIT, due_in.total_seconds()))
