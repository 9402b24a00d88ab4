"""The console's clock: real time plus what `wait` skipped, for watching scheduled adds run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from bot.slack.wiring import Services


class ConsoleClock:
    """Real time moved forward by `wait` (docs/SPEC.md §15). Only the console uses it: in
    serve and socket modes the database's clock alone says what is due."""

    def __init__(self) -> None:
        self._ahead = 0.0
        self._lock = threading.Lock()

    def ahead(self) -> float:
        """Seconds this clock is ahead of real time (and of the database's clock)."""
        with self._lock:
            return self._ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.ahead())

    def skip(self, seconds: float) -> None:
        with self._lock:
            self._ahead += max(0.0, seconds)

    def use_in(self, services: Services) -> None:
        """Make the workflow (previews, approvals, schedules) read this clock."""
        workflow = services.workflow
        workflow.now = self.now
        workflow.approvals.now = self.now
        workflow.clock_ahead = self.ahead
