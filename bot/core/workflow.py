"""The operation workflow (docs/SPEC.md §3): plan, run and undo joined, with no Slack in it."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from bot.core.approvals.rules import Approvals
from bot.core.journal import BatchJournal
from bot.core.operation import Operation, State
from bot.core.operations.plan import Planning
from bot.core.operations.run import Running
from bot.core.operations.scheduled import Scheduling
from bot.core.operations.undo import Undoing
from bot.core.policy import Policy
from bot.core.schedule.store import ScheduleStore
from bot.core.store import OperationStore
from bot.uplynk.client import UplynkClient

LIBRARY_ID = re.compile(r"^[0-9a-f]{32}$")


class Workflow(Planning, Running, Undoing, Scheduling):
    """Plain-code implementation of docs/SPEC.md §3; every state change is a compare-and-set."""

    def __init__(
        self,
        store: OperationStore,
        uplynk: UplynkClient,
        policy: Policy,
        groups_of: Callable[[str], set[str]],
        confirm_ttl: int = 900,
        undo_window: int = 86400,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        owed: Callable[..., list] | None = None,
        batch_grace: float = 60.0,
        approval_ttl: int = 86400,
        lookup_threads: int = 16,
        zone_of: Callable[[str], str | None] | None = None,
        schedule_grace: int = 3600,
        schedule_horizon: int = 90 * 86400,
        clock_ahead: Callable[[], float] | None = None,
    ):
        self.store = store
        self.uplynk = uplynk
        self.policy = policy
        self.groups_of = groups_of
        self.confirm_ttl = confirm_ttl
        self.undo_window = undo_window
        self.now = now
        # owed(event, operation, **facts) -> outbox entries (bot.core.delivery.outbox.Owed) that the
        # event owes to Slack; they are queued in the transaction that records the event.
        self.owed = owed or (lambda event, operation, **facts: [])
        # How long a resumed run waits for the answer to a batch that an earlier run (presumed
        # dead, maybe only slow) has in flight, counted from when that batch was recorded.
        self.batch_grace = batch_grace
        self.journal = BatchJournal(store)
        self._running: dict[str, str] = {}  # this process's run tokens -> operation id
        self._running_lock = threading.Lock()
        # Saves batch progress off the batch loop (see _BatchRecorder); shared, so that an
        # operation does not start a thread of its own.
        self._savers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="addtolib-save")
        # Asset look-ups that run while a preview resolves its library: one per thread that
        # can be planning a preview, or previews queue here behind each other's look-ups.
        self._lookups = ThreadPoolExecutor(
            max_workers=lookup_threads, thread_name_prefix="addtolib-lookup"
        )
        self.approvals = Approvals(store, policy, groups_of, self.owed, now, approval_ttl)
        # Scheduled adds (docs/SPEC.md §15): the requester's Slack time zone, the grace for a
        # missed time, how far ahead, and how far the clock is ahead of the database's.
        self.zone_of = zone_of or (lambda user_id: None)
        self.schedule_grace = schedule_grace
        self.schedule_horizon = schedule_horizon
        self.clock_ahead = clock_ahead or (lambda: 0.0)
        self.schedules = ScheduleStore(store)
        # Set on SIGTERM: running operations stop after their current batch (stop_new_batches).
        self._stopping = threading.Event()

    # -- reading ----------------------------------------------------------------------------

    def history(self, user_id: str, library: str | None = None, limit: int = 15) -> list[Operation]:
        """Recent operations, newest first: the user's own, or everyone's for an admin."""
        owner = None if self.policy.is_admin(user_id) else user_id
        if library and LIBRARY_ID.match(library.lower()):
            return self.store.recent(user_id=owner, library_id=library.lower(), limit=limit)
        operations = self.store.recent(user_id=owner, limit=500 if library else limit)
        if library:
            wanted = library.casefold()
            operations = [o for o in operations if (o.library_name or "").casefold() == wanted]
        return operations[:limit]

    def recover(self, idle_for: timedelta) -> list[Operation]:
        """Mark running operations nobody has touched for `idle_for` as interrupted."""

        def owed(operation: Operation) -> list:
            # An undo taken back returns to done/partial: only a run is "interrupted".
            event = "interrupted" if operation.state == State.INTERRUPTED else "undo_interrupted"
            return self.owed(event, operation)

        return self.store.interrupt_running(idle_for=idle_for, owed=owed)
