"""Running (docs/SPEC.md §3.4-3.6, §5, §10): confirm, execute, retry and resume, batch by batch."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from bot import metrics
from bot.core.approvals.outcomes import AwaitingApproval
from bot.core.batch_recorder import BatchRecorder
from bot.core.operation import Operation, State
from bot.core.operations.base import SUPERSEDED, UseCase, journal_state, new_token
from bot.core.outcomes import Executed, Progress, Refused
from bot.core.phrases import already_handled, duration, id_sample
from bot.uplynk.errors import UplynkError
from bot.uplynk.models import BatchResult

log = logging.getLogger(__name__)

RETRYABLE = (State.PARTIAL, State.FAILED, State.INTERRUPTED)
# updated_at of an operation whose lease was handed back: older than any lease.
LEASE_RELEASED = datetime(2000, 1, 1, tzinfo=UTC)
# The outcome of an asset someone else added between the preview and the execution.
ALREADY_PRESENT = "already in library"
# The outcome of an asset Uplynk answered 200 for but does not list in the library.
NOT_LISTED = "failed: Uplynk accepted it but does not list it in the library"


class _Superseded(Exception):
    """Raised from the client's before_batch hook: the run lost its fence; send nothing more."""


class StoppingForRestart(Exception):
    """Raised before a batch while the process shuts down: that batch is not sent."""


class Running(UseCase):
    """confirm and cancel a preview, execute it, retry or resume a run; the runs in progress."""

    def _permission_withdrawn(self, operation: Operation, user_id: str) -> str | None:
        """Click time: why the requester may no longer add here (None if they may, or an
        admin clicked)."""
        if self.policy.is_admin(user_id):
            return None
        assert operation.library_id is not None  # clicked on a planned operation
        decision = self.policy.check(
            operation.user_id, operation.library_id, operation.channel_id, self.groups_of
        )
        return None if decision.allowed else decision.reason

    def confirm(self, operation_id: str, user_id: str) -> Operation | AwaitingApproval | Refused:
        """Claim a pending operation for execution: once, within the TTL, with permission.

        Returns the confirmed Operation (pass it to execute()), AwaitingApproval when the
        library is protected (docs/SPEC.md §7: nothing runs until approvers decide), or Refused.
        """
        operation = self._load_for(operation_id, user_id, "confirm")
        if isinstance(operation, Refused):
            return operation
        if operation.state != State.PENDING:
            return Refused(already_handled(operation))
        if operation.library_id is None:
            return Refused(
                "This request is still waiting for a library to be picked; pick one of the "
                "libraries offered first. Nothing was added."
            )
        if self.now() - operation.created_at > timedelta(seconds=self.confirm_ttl):
            self.store.transition(operation.id, State.PENDING, State.EXPIRED)
            return Refused(
                f"This confirmation expired (confirmations last {duration(self.confirm_ttl)}); "
                "nothing was added. Run the command again."
            )
        withdrawn = self._permission_withdrawn(operation, user_id)
        if withdrawn:
            self.store.transition(
                operation.id, State.PENDING, State.DENIED, denial_reason=withdrawn
            )
            return Refused(f"Permission was withdrawn since the preview: {withdrawn}")
        if self.approvals.required(operation):
            return self.approvals.request(operation, user_id)
        if operation.run_at is not None:  # docs/SPEC.md §15: it waits for its time
            return self.schedule(operation, user_id)
        claimed = self.store.transition(
            operation.id,
            State.PENDING,
            State.CONFIRMED,
            confirmed_by=user_id,
            confirmed_at=self.now(),
        )
        if claimed is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        return claimed

    def cancel(self, operation_id: str, user_id: str) -> Operation | Refused:
        """Cancel a pending or scheduled operation, or withdraw one awaiting approval."""
        operation = self._load_for(operation_id, user_id, "cancel")
        if isinstance(operation, Refused):
            return operation
        if operation.state == State.AWAITING_APPROVAL:  # approvers were asked: tell them
            cancelled = self.approvals.withdraw(operation, user_id)
        elif operation.state == State.SCHEDULED:  # until its run is claimed (docs/SPEC.md §15)
            cancelled = self.store.transition(
                operation.id,
                State.SCHEDULED,
                State.CANCELLED,
                enqueue=self.owed("schedule_cancelled", operation, by=user_id),
            )
        else:
            cancelled = self.store.transition(operation.id, State.PENDING, State.CANCELLED)
        if cancelled is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        return cancelled

    # -- execution --------------------------------------------------------------------------

    def execute(self, operation: Operation, progress: Progress | None = None) -> Executed:
        """Add the operation's new assets, batch by batch, recording each batch's outcome."""
        token = new_token()
        running = self.store.transition(
            operation.id, State.CONFIRMED, State.RUNNING, run_token=token
        )
        if running is None:
            return Executed(self.store.get(operation.id) or operation, None, ["already handled"])
        return self._run(running, list(running.new_ids), progress, token)

    def retry(
        self, operation_id: str, user_id: str, progress: Progress | None = None
    ) -> Executed | Refused:
        """Re-send only the assets that failed (or never ran) for a partial or broken operation."""
        operation = self._load_for(operation_id, user_id, "retry")
        if isinstance(operation, Refused):
            return operation
        if operation.state not in RETRYABLE:
            return Refused(already_handled(operation))
        if operation.removed_ids:
            return Refused("An undo of this operation has started: use Undo to finish it.")
        withdrawn = self._permission_withdrawn(operation, user_id)
        if withdrawn:
            return Refused(f"Permission was withdrawn: {withdrawn}")
        return self._resume(operation, RETRYABLE, progress, by=user_id)

    def resume(self, operation_id: str, progress: Progress | None = None) -> Executed | Refused:
        """Continue an interrupted operation without a click (automatic resume, no user).

        The same path as Retry: a new run token, then only what no earlier run is known to
        have landed (see _add) is sent.
        """
        operation = self.store.get(operation_id) if operation_id else None
        if operation is None:
            return Refused("No such operation; nothing was done.")
        if operation.state != State.INTERRUPTED:
            return Refused(already_handled(operation))
        return self._resume(operation, (State.INTERRUPTED,), progress)

    def _resume(
        self,
        operation: Operation,
        from_states: tuple[str, ...],
        progress: Progress | None,
        by: str | None = None,
    ) -> Executed | Refused:
        token = new_token()
        running = self.store.transition(
            operation.id, from_states, State.RUNNING, run_token=token, error=None
        )
        if running is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        added = set(running.added_ids)
        todo = [
            a
            for a in running.new_ids
            if a not in added and running.outcome.get(a) != ALREADY_PRESENT
        ]
        event = {"event": "retried", "by": by, "was": operation.state} if by else None
        return self._run(running, todo, progress, token, event or {"event": "resumed"})

    def _run(
        self,
        running: Operation,
        todo: list[str],
        progress: Progress | None,
        token: str,
        event: dict | None = None,
    ) -> Executed:
        with self._executing(running.id, token):
            return self._add(running, todo, progress, token, event)

    def stop_new_batches(self) -> None:
        """Shutting down: every running operation stops after the batch it is sending."""
        self._stopping.set()

    def _unless_stopping(self, number: int, ids: list[str]) -> None:
        """Called before each batch is sent: refuses to send one once shutting down."""
        if self._stopping.is_set():
            raise StoppingForRestart(f"batch {number} not sent: shutting down")

    def running_here(self) -> list[str]:
        """Ids of the operations this process is executing (or undoing) now."""
        with self._running_lock:
            return sorted(set(self._running.values()))

    def running_tokens(self) -> dict[str, str]:
        """Run token -> operation id, for this process's runs (the heartbeat renews them)."""
        with self._running_lock:
            return dict(self._running)

    def _superseded(self, operation: Operation) -> Executed:
        log.warning("operation %s: %s; this run stops", operation.id, SUPERSEDED)
        return Executed(self.store.get(operation.id) or operation, None, [SUPERSEDED], True)

    def _add(
        self,
        operation: Operation,
        todo: list[str],
        progress: Progress | None,
        token: str,
        event: dict | None = None,
    ) -> Executed:
        assert operation.library_id is not None  # only a planned operation runs
        added = list(operation.added_ids)
        outcome = dict(operation.outcome)
        for asset_id in operation.present_ids:
            outcome.setdefault(asset_id, ALREADY_PRESENT)
        for asset_id in operation.missing_ids:
            outcome[asset_id] = "not found"
        # Only what an earlier run had in flight (per the journal) may be this operation's
        # work; anything else now in the library was added by someone else.
        entries = self.journal.settled(operation.id, "add", token, self.batch_grace)
        claimable = self.journal.claimable_ids(entries, token) - set(added)
        todo, present = self._still_new(operation.library_id, todo)
        for asset_id in present:
            if asset_id in claimable:
                added.append(asset_id)
                outcome[asset_id] = "added"
            else:
                outcome[asset_id] = ALREADY_PRESENT
        if present and not self.store.save(
            operation.id, run_token=token, added_ids=added, outcome=outcome
        ):
            return self._superseded(operation)
        errors: list[str] = []
        failed: list[str] = []
        total = len(todo)
        batches = -(-total // max(1, self.uplynk.batch_size))
        numbers: dict[str, int] = {}  # first id of a batch -> its number
        in_journal: dict[str, int] = {}  # first id of a batch -> its journal entry
        lock = threading.Lock()  # batches may finish concurrently, in any order
        library = None
        processed = [0]

        def before_batch(number: int, ids: list[str]) -> None:
            self._unless_stopping(number, ids)
            entry = (
                None
                if recorder.superseded
                else self.journal.begin(operation.id, token, "add", number, ids)
            )
            if entry is None:
                raise _Superseded  # not sent: another run owns the operation now
            with lock:
                numbers[ids[0]], in_journal[ids[0]] = number, entry

        def on_batch(batch: BatchResult, done: int, _total: int) -> None:
            nonlocal library
            with lock:
                entry = in_journal.pop(batch.ids[0], None)
                number = numbers.get(batch.ids[0], 0)
                if entry is not None:  # None: not sent (an earlier batch stopped the job)
                    self.journal.finish(entry, journal_state(batch))
                processed[0] = done
                if batch.ok:
                    library = batch.library
                    added.extend(batch.ids)
                    outcome.update(dict.fromkeys(batch.ids, "added"))
                else:
                    failed.extend(batch.ids)
                    message = batch.error.user_message if batch.error else "unknown error"
                    where = f"batch {number} of {batches}" if number else "not sent"
                    errors.append(f"{where} ({id_sample(batch.ids)}): {message}")
                    outcome.update(dict.fromkeys(batch.ids, f"failed: {message}"))
                recorder.record(added, outcome, done, total)

        recorder = BatchRecorder(self._savers, self.store, operation.id, progress, token)
        superseded = False
        try:
            recorder.start(total)
            if todo:
                self.uplynk.add_assets(
                    operation.library_id, todo, on_batch=on_batch, before_batch=before_batch
                )
        except _Superseded:
            superseded = True
        except StoppingForRestart:
            pass  # the batches sent are recorded; _stopped() below hands the rest on
        finally:
            recorder.close()  # every save lands before the final transition below
        if superseded or recorder.superseded:
            return self._superseded(operation)
        if processed[0] < total:
            return self._stopped(operation, token, failed, errors, processed[0], total)
        accepted = [a for a in todo if outcome.get(a) == "added"]
        unlisted = self._read_back(operation.library_id, accepted, errors)
        if unlisted:
            added = [a for a in added if a not in unlisted]
            failed.extend(a for a in accepted if a in unlisted)
            outcome.update(dict.fromkeys(unlisted, NOT_LISTED))
            errors.append(
                f"read-back: Uplynk accepted {len(unlisted)} assets but does not list them in "
                f"the library ({id_sample(sorted(unlisted))})"
            )
        added_now = [a for a in accepted if a not in unlisted]  # by this run, and listed
        metrics.ASSETS_ADDED.inc(len(added_now))
        if failed and not set(todo) - set(failed):
            state = State.FAILED
        elif failed:
            state = State.PARTIAL
        else:
            state = State.DONE
        facts = dict(event or {"event": "executed"})
        finished = self.store.transition(
            operation.id,
            State.RUNNING,
            state,
            require={"run_token": token},
            run_token=None,
            enqueue=self.owed(
                facts.pop("event"),
                operation,
                state=state,
                added=len(added),
                failed=len(failed),
                added_now=added_now,
                **facts,
            ),
            added_ids=added,
            failed_ids=failed,
            outcome=outcome,
            errors=list(operation.errors) + errors,
            error="; ".join(errors) or None,
            finished_at=self.now(),
        )
        if finished is None:
            return self._superseded(operation)
        if library is None or not failed:
            library = self._fresh_library(operation.library_id) or library
        return Executed(finished, library, errors)

    def _stopped(
        self,
        operation: Operation,
        token: str,
        failed: list[str],
        errors: list[str],
        sent: int,
        total: int,
    ) -> Executed:
        """A shutdown stopped the batches: record them and hand the lease back.

        The operation stays `running` with its lease released (lease_at in the past), so
        the next sweep of any live instance takes it over at once instead of after a lease.
        """
        log.info("operation %s stopped for a restart after %d of %d", operation.id, sent, total)
        self.store.save(
            operation.id,
            run_token=token,
            failed_ids=failed,
            errors=list(operation.errors) + errors,
            updated_at=LEASE_RELEASED,
            lease_at=LEASE_RELEASED,
        )
        stopped = self.store.get(operation.id) or operation
        return Executed(stopped, None, [f"stopped by a restart after {sent} of {total} assets"])

    def _read_back(self, library_id: str, accepted: list[str], errors: list[str]) -> set[str]:
        """Those of `accepted` (Uplynk answered 200) that Uplynk does not list in the library.

        A read-back that fails leaves the 200s trusted, and says so among the errors.
        """
        if not accepted:
            return set()
        try:
            return set(accepted) - self._held(library_id, accepted)
        except UplynkError as exc:
            log.warning("read-back after adding failed (%s); trusting Uplynk's answers", exc)
            errors.append(f"read-back not possible: {exc.user_message}")
            return set()

    def _still_new(self, library_id: str, todo: list[str]) -> tuple[list[str], list[str]]:
        """Split todo into (still new, added by someone else since the preview)."""
        if not todo:
            return todo, []
        try:
            held = self._held(library_id, todo)
        except UplynkError as exc:
            log.warning("re-check before adding failed (%s); adding as previewed", exc)
            return todo, []
        return [a for a in todo if a not in held], [a for a in todo if a in held]
