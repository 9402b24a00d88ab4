"""Scheduling (docs/SPEC.md §15): read the time, schedule on confirm, claim and run at the time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot import metrics
from bot.core.operation import Operation, State
from bot.core.operations.base import UseCase
from bot.core.outcomes import Executed, Progress, Refused, Requester
from bot.core.phrases import already_handled
from bot.core.schedule.store import ScheduleStore
from bot.core.schedule.when import When, check_window, resolve

log = logging.getLogger(__name__)

#: Claimed per look: the rest wait for the next look, which comes at once.
CLAIM_BATCH = 200


class Scheduling(UseCase):
    """when(), schedule() (confirm's branch), due() for the loop, run_scheduled()."""

    schedule_grace: int
    schedule_horizon: int
    zone_of: Callable[[str], str | None]
    # Seconds the clock is ahead of the database's: the console's `wait`; 0 elsewhere.
    clock_ahead: Callable[[], float]
    schedules: ScheduleStore

    def when(self, who: Requester, when: When) -> tuple[datetime, str | None] | Refused:
        """The instant `when` names for this requester (in their Slack time zone), or why it
        is refused (in the past, beyond ADDTOLIB_SCHEDULE_HORIZON)."""
        zone_name = self.zone_of(who.user_id)  # also for showing the time in their zone
        run_at = resolve(when, self.now(), zone_name)
        reason = check_window(run_at, self.now(), self.schedule_horizon)
        if reason:
            return Refused(reason)
        return run_at, zone_name

    def schedule(self, operation: Operation, user_id: str) -> Operation | Refused:
        """confirm() of a scheduled add: pending -> scheduled; the thread opens now."""
        assert operation.run_at is not None  # confirm() comes here only with a time
        reason = check_window(operation.run_at, self.now(), self.schedule_horizon)
        if reason:
            self.store.transition(operation.id, State.PENDING, State.EXPIRED)
            return Refused(reason.replace("That time", "Its time"))
        scheduled = self.store.transition(
            operation.id,
            State.PENDING,
            State.SCHEDULED,
            enqueue=self.owed("scheduled", operation, by=user_id),
            confirmed_by=user_id,
            confirmed_at=self.now(),
        )
        if scheduled is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        metrics.SCHEDULED.inc()
        return scheduled

    def due(self) -> list[Operation]:
        """One look by the loop: expire the missed, claim the due (confirmed, leased)."""
        ahead = self.clock_ahead()
        missed = self.schedules.expire_missed(
            self.schedule_grace, ahead, owed=lambda op: self.owed("schedule_missed", op)
        )
        for operation in missed:
            log.warning("scheduled operation %s missed its time; expired", operation.id)
        return self.schedules.claim_due(CLAIM_BATCH, self.schedule_grace, ahead)

    def run_scheduled(
        self, operation: Operation, progress: Progress | None = None
    ) -> Executed | Refused:
        """Run a claimed scheduled add: the requester's permission is checked again first."""
        decision = self.policy.check(
            operation.user_id, operation.library_id or "", operation.channel_id, self.groups_of
        )
        if not decision.allowed:
            denied = self.store.transition(
                operation.id,
                State.CONFIRMED,
                State.DENIED,
                enqueue=self.owed("schedule_denied", operation, reason=decision.reason),
                denial_reason=decision.reason,
            )
            log.info("scheduled operation %s not run: %s", operation.id, decision.reason)
            return Refused(decision.reason, denied)
        return self.execute(operation, progress)
