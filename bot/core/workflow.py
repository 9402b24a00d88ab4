"""The operation workflow: plan, confirm, execute, cancel, undo and retry, with no Slack in it."""

from __future__ import annotations

import difflib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from bot import metrics
from bot.core.approvals.outcomes import AwaitingApproval
from bot.core.approvals.rules import Approvals
from bot.core.batch_recorder import BatchRecorder
from bot.core.journal import BatchJournal
from bot.core.operation import Operation, State
from bot.core.outcomes import Executed, NeedsPick, Planned, Progress, Refused, Requester, Undone
from bot.core.parsing import AddCommand, LibraryRef
from bot.core.phrases import already_handled, duration, id_sample
from bot.core.policy import Policy
from bot.core.store import OperationStore
from bot.core.text import escape_mrkdwn
from bot.uplynk.client import UplynkClient
from bot.uplynk.errors import UplynkError, UplynkNotFound, UplynkUnavailable
from bot.uplynk.models import BatchResult, Library

log = logging.getLogger(__name__)

LIBRARY_ID = re.compile(r"^[0-9a-f]{32}$")
FINISHED_ADDING = (State.DONE, State.PARTIAL)
RETRYABLE = (State.PARTIAL, State.FAILED, State.INTERRUPTED)
# updated_at of an operation whose lease was handed back: older than any lease.
LEASE_RELEASED = datetime(2000, 1, 1, tzinfo=UTC)
# The outcome of an asset someone else added between the preview and the execution.
ALREADY_PRESENT = "already in library"
# The outcome of an asset Uplynk answered 200 for but does not list in the library.
NOT_LISTED = "failed: Uplynk accepted it but does not list it in the library"
REMOVED = "removed by undo"
PICKED_ALREADY = "A library was already picked for this request; nothing more was done."
SUPERSEDED = "this run was presumed dead and another run took the operation over"


class _Superseded(Exception):
    """Raised from the client's before_batch hook: the run lost its fence; send nothing more."""


def _new_token() -> str:
    return uuid.uuid4().hex


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _journal_state(batch: BatchResult) -> str:
    """done / failed, or unknown when the answer was lost and the request may have landed."""
    if batch.ok:
        return "done"
    in_doubt = isinstance(batch.error, UplynkUnavailable) and batch.error.status is None
    return "unknown" if in_doubt else "failed"


class StoppingForRestart(Exception):
    """Raised before a batch while the process shuts down: that batch is not sent."""


class Workflow:
    """Plain-code implementation of SPEC section 3; every state change is a compare-and-set."""

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
        self._running: dict[str, str] = {}  # operation id -> this process's run token
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
        # Set on SIGTERM: running operations stop after their current batch (stop_new_batches).
        self._stopping = threading.Event()

    # -- planning -------------------------------------------------------------------------

    def plan(
        self, who: Requester, command: AddCommand, response_url: str | None = None
    ) -> Planned | NeedsPick | Refused:
        """Resolve the library, check permission, look up the assets and store a preview."""
        if not self._may_add_anywhere(who):
            return self._deny(who, command.asset_ids, None, None, self._blanket_refusal(who))
        # The assets are looked up while the library is resolved: one Uplynk round trip.
        lookup = self._look_up(command.asset_ids)
        try:
            found = self._resolve_library(command.library)
        except UplynkError as exc:
            return Refused(self._uplynk_message(exc, command.library))
        if isinstance(found, Refused):
            return found
        if isinstance(found, list):
            operation = self.store.create(
                team_id=who.team_id,
                channel_id=who.channel_id,
                user_id=who.user_id,
                library_name=command.library.name,
                requested_ids=list(command.asset_ids),
                response_url=response_url,
            )
            return NeedsPick(operation, command.library.name or "", found)
        return self._preview(who, found, list(command.asset_ids), response_url, lookup=lookup)

    def pick_library(
        self, operation_id: str, library_id: str, user_id: str
    ) -> Planned | NeedsPick | Refused:
        """Continue a plan once the requester picked one of several libraries."""
        operation = self.store.get(operation_id)
        if operation is None:
            return Refused(
                "That choice no longer matches a waiting request; run the command again."
            )
        if operation.library_id is not None:
            return Refused(PICKED_ALREADY)  # the same answer as losing the compare-and-set
        if operation.user_id != user_id:
            return Refused(f"Only <@{operation.user_id}> can choose the library for this request.")
        if operation.state != State.PENDING:
            return Refused(f"This request is already {operation.state}.")
        lookup = self._look_up(operation.requested_ids)
        try:
            library = self.uplynk.get_library(library_id)
        except UplynkError as exc:
            return Refused(self._uplynk_message(exc, LibraryRef(id=library_id, name=None)))
        who = Requester(operation.user_id, operation.team_id, operation.channel_id)
        planned = self._preview(
            who,
            library,
            list(operation.requested_ids),
            operation.response_url,
            operation,
            lookup=lookup,
        )
        return planned

    def _look_up(self, asset_ids: Iterable[str]) -> Future:
        """Start looking the assets up now (their answer is needed once the library is known)."""
        return self._lookups.submit(self.uplynk.get_assets, list(asset_ids))

    def draft(self, who: Requester, asset_ids: list[str] | tuple[str, ...]) -> Operation:
        """A pending operation with asset ids and no library yet: what a modal keeps on the
        server (ids found in a message, too many for the view) until it is submitted."""
        return self.store.create(
            team_id=who.team_id,
            channel_id=who.channel_id,
            user_id=who.user_id,
            requested_ids=list(asset_ids),
        )

    def plan_draft(
        self,
        draft_id: str,
        user_id: str,
        library_id: str,
        channel_id: str,
        more_ids: list[str] | tuple[str, ...] = (),
    ) -> Planned | NeedsPick | Refused:
        """Plan a draft once its form is submitted: its ids plus `more_ids`, summary to
        `channel_id` (the permission check uses that channel)."""
        operation = self.store.get(draft_id) if draft_id else None
        if operation is None or operation.library_id is not None:
            return Refused("This form was already submitted, or has expired; open it again.")
        if operation.user_id != user_id:
            return Refused(f"Only <@{operation.user_id}> can submit this form.")
        if operation.state != State.PENDING:
            return Refused(f"This form is {operation.state}; open it again.")
        requested = list(dict.fromkeys([*operation.requested_ids, *more_ids]))
        self.store.update(draft_id, requested_ids=requested, channel_id=channel_id)
        return self.pick_library(draft_id, library_id, user_id)

    def _preview(
        self,
        who: Requester,
        library: Library,
        asset_ids: list[str],
        response_url: str | None,
        existing: Operation | None = None,
        *,
        lookup: Future | None = None,
    ) -> Planned | Refused:
        decision = self.policy.check(who.user_id, library.id, who.channel_id, self.groups_of)
        if not decision.allowed:
            if existing is not None:
                denied = self.store.transition(
                    existing.id,
                    State.PENDING,
                    State.DENIED,
                    require={"library_id": None},
                    denial_reason=decision.reason,
                )
                if denied is None:
                    return Refused(PICKED_ALREADY)
                return Refused(
                    f"You may not add to *{escape_mrkdwn(library.desc)}*: {decision.reason}"
                )
            return self._deny(who, asset_ids, library, response_url, decision.reason)
        try:
            assets = lookup.result() if lookup is not None else self.uplynk.get_assets(asset_ids)
        except UplynkError as exc:
            return Refused(f"Could not look up the assets: {escape_mrkdwn(exc.user_message)}")
        missing = [a for a in asset_ids if a not in assets]
        present = [a for a in asset_ids if a in assets and library.id in assets[a].libraries]
        new = [a for a in asset_ids if a in assets and library.id not in assets[a].libraries]
        preview = {
            "library_id": library.id,
            "library_name": library.desc,
            "new_ids": new,
            "present_ids": present,
            "missing_ids": missing,
            "asset_titles": {a: assets[a].desc for a in [*new, *present] if assets[a].desc},
        }
        if existing is None:
            operation = self.store.create(
                team_id=who.team_id,
                channel_id=who.channel_id,
                user_id=who.user_id,
                requested_ids=asset_ids,
                response_url=response_url,
                **preview,
            )
        else:
            # The pick is a compare-and-set: of two quick clicks, only the first one's preview
            # is stored (and shown); the other is refused.
            operation = self.store.update(
                existing.id, require={"library_id": None, "state": "pending"}, **preview
            )
            if operation is None:
                return Refused(PICKED_ALREADY)
        if not new:
            # Nothing to add: the preview is the whole answer; the operation is closed.
            operation = self.store.transition(operation.id, State.PENDING, State.DONE) or operation
        return Planned(operation, library, {a: asset.desc for a, asset in assets.items()})

    def _resolve_library(self, ref: LibraryRef) -> Library | list[Library] | Refused:
        if ref.id:
            return self.uplynk.get_library(ref.id)
        name = ref.name or ""
        candidates = self.uplynk.find_libraries(name)
        exact = [lib for lib in candidates if lib.desc.casefold() == name.casefold()]
        if len(exact) == 1:
            return exact[0]
        if exact:
            return exact
        if candidates:
            return candidates[:10]
        everything = self.uplynk.find_libraries("")
        by_name = {lib.desc: lib for lib in everything}
        close = difflib.get_close_matches(name, list(by_name), n=3, cutoff=0.4)
        if not close:
            close = [
                d for d in by_name if set(d.casefold().split()) & set(name.casefold().split())
            ][:3]
        hint = ", ".join(f"*{escape_mrkdwn(d)}*" for d in close) if close else "none"
        return Refused(f"No library is named *{escape_mrkdwn(name)}*. Closest matches: {hint}.")

    def _may_add_anywhere(self, who: Requester) -> bool:
        allowed = self.policy.allowed_libraries(who.user_id, who.channel_id, self.groups_of)
        return allowed == "*" or bool(allowed)

    def _blanket_refusal(self, who: Requester) -> str:
        decision = self.policy.check(who.user_id, "*", who.channel_id, self.groups_of)
        return decision.reason

    def _deny(
        self,
        who: Requester,
        asset_ids: list[str] | tuple[str, ...],
        library: Library | None,
        response_url: str | None,
        reason: str,
    ) -> Refused:
        operation = self.store.create(
            team_id=who.team_id,
            channel_id=who.channel_id,
            user_id=who.user_id,
            library_id=library.id if library else None,
            library_name=library.desc if library else None,
            requested_ids=list(asset_ids),
            response_url=response_url,
            state="denied",
            denial_reason=reason,
        )
        where = f" to *{escape_mrkdwn(library.desc)}*" if library else ""
        return Refused(f"You may not add assets{where}: {reason}", operation)

    # -- clicks -----------------------------------------------------------------------------

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

    def _permission_withdrawn(self, operation: Operation, user_id: str) -> str | None:
        """Click time: why the requester may no longer add here (None if they may, or an
        admin clicked)."""
        if self.policy.is_admin(user_id):
            return None
        decision = self.policy.check(
            operation.user_id, operation.library_id, operation.channel_id, self.groups_of
        )
        return None if decision.allowed else decision.reason

    def confirm(self, operation_id: str, user_id: str) -> Operation | AwaitingApproval | Refused:
        """Claim a pending operation for execution: once, within the TTL, with permission.

        Returns the confirmed Operation (pass it to execute()), AwaitingApproval when the
        library is protected (SPEC 7: nothing runs until approvers decide), or Refused.
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
        """Cancel a pending operation, or withdraw one awaiting approval."""
        operation = self._load_for(operation_id, user_id, "cancel")
        if isinstance(operation, Refused):
            return operation
        if operation.state == State.AWAITING_APPROVAL:  # approvers were asked: tell them
            cancelled = self.store.transition(
                operation.id,
                State.AWAITING_APPROVAL,
                State.CANCELLED,
                enqueue=self.approvals.closing(operation, "approval_withdrawn"),
            )
        else:
            cancelled = self.store.transition(operation.id, State.PENDING, State.CANCELLED)
        if cancelled is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        return cancelled

    # -- execution --------------------------------------------------------------------------

    def execute(self, operation: Operation, progress: Progress | None = None) -> Executed:
        """Add the operation's new assets, batch by batch, recording each batch's outcome."""
        token = _new_token()
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
        return self._resume(operation, ("interrupted",), progress)

    def _resume(
        self,
        operation: Operation,
        from_states: tuple[str, ...],
        progress: Progress | None,
        by: str | None = None,
    ) -> Executed | Refused:
        token = _new_token()
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

    @contextmanager
    def _executing(self, operation_id: str, token: str) -> Iterator[None]:
        """Mark an operation as executed by this process while the block runs (heartbeat)."""
        with self._running_lock:
            self._running[operation_id] = token
        try:
            yield
        finally:
            with self._running_lock:
                self._running.pop(operation_id, None)

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
            return sorted(self._running)

    def running_tokens(self) -> dict[str, str]:
        """Operation id -> run token, for this process's runs (the heartbeat renews them)."""
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
                    self.journal.finish(entry, _journal_state(batch))
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
            state = "failed"
        elif failed:
            state = "partial"
        else:
            state = "done"
        facts = dict(event or {"event": "executed"})
        finished = self.store.transition(
            operation.id,
            "running",
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

    def _send(
        self, operation: Operation, token: str, kind: str, number: int, ids: list[str]
    ) -> BatchResult | None:
        """Journal one batch, send it, journal its answer; None if the run lost its fence."""
        entry = self.journal.begin(operation.id, token, kind, number, ids)
        if entry is None:
            return None
        call = self.uplynk.add_assets if kind == "add" else self.uplynk.remove_assets
        batch = call(operation.library_id, ids).batches[0]  # len(ids) <= batch_size: one call
        self.journal.finish(entry, _journal_state(batch))
        return batch

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

    def _held(self, library_id: str, ids: Iterable[str]) -> set[str]:
        """Those of `ids` Uplynk now lists in the library (one look-up; raises UplynkError)."""
        ids = list(ids)
        assets = self.uplynk.get_assets(ids)
        return {a for a in ids if a in assets and library_id in assets[a].libraries}

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

    def _gone_from(self, library_id: str, ids: set[str]) -> set[str]:
        """Those of `ids` no longer in the library (none, if the look-up fails)."""
        try:
            return ids - self._held(library_id, sorted(ids))
        except UplynkError as exc:
            log.warning("re-check before removing failed (%s); removing as recorded", exc)
            return set()

    def _fresh_library(self, library_id: str) -> Library | None:
        try:
            return self.uplynk.get_library(library_id)
        except UplynkError as exc:
            log.warning("could not refresh library %s: %s", library_id, exc)
            return None

    # -- undo -------------------------------------------------------------------------------

    def undo(self, operation_id: str, user_id: str) -> Undone | Refused:
        """Remove exactly the assets this operation added, within the undo window.

        Resumable: removals are journalled and saved per batch; an undo that fails part-way
        (or is cut off, see OperationStore.interrupt_running) returns the operation to
        done/partial with what it removed recorded, and Undo again removes the rest.
        """
        operation = self._load_for(operation_id, user_id, "undo")
        if isinstance(operation, Refused):
            return operation
        if operation.state not in FINISHED_ADDING:
            return Refused(already_handled(operation))
        if not operation.added_ids:
            return Refused("This operation added nothing, so there is nothing to undo.")
        finished = operation.finished_at or operation.created_at
        # An undo already under way may always be finished.
        late = self.now() - finished > timedelta(seconds=self.undo_window)
        if late and not operation.removed_ids:
            return Refused(
                "Too late to undo: operations can be undone for "
                f"{duration(self.undo_window)} after they finish; nothing was removed."
            )
        token = _new_token()
        claimed = self.store.transition(
            operation.id,
            FINISHED_ADDING,
            State.UNDOING,
            run_token=token,
            undo_from=operation.state,
            undone_by=user_id,
        )
        if claimed is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        with self._executing(claimed.id, token):
            return self._remove(claimed, token)

    def _remove(self, operation: Operation, token: str) -> Undone | Refused:
        removed = list(operation.removed_ids)
        outcome = dict(operation.outcome)
        errors: list[str] = []
        already = set(removed)
        todo = [a for a in operation.added_ids if a not in already]
        # A cut-off undo may have removed its last batch without recording it.
        entries = self.journal.settled(operation.id, "remove", token, self.batch_grace)
        in_doubt = self.journal.claimable_ids(entries, token) & set(todo)
        if in_doubt:
            gone = self._gone_from(operation.library_id, in_doubt)
            removed.extend(a for a in todo if a in gone)
            outcome.update(dict.fromkeys(gone, REMOVED))
            todo = [a for a in todo if a not in gone]
        library = None
        before = len(removed)
        for number, ids in enumerate(_chunks(todo, max(1, self.uplynk.batch_size)), 1):
            batch = self._send(operation, token, "remove", number, ids)
            if batch is None:
                return Refused(f"This undo stopped: {SUPERSEDED}.")
            if batch.ok:
                library = batch.library
                removed.extend(ids)
                outcome.update(dict.fromkeys(ids, REMOVED))
            else:
                message = batch.error.user_message if batch.error else "unknown error"
                errors.append(f"{len(ids)} assets ({id_sample(ids)}): {message}")
            if not self.store.save(
                operation.id, run_token=token, removed_ids=removed, outcome=outcome
            ):
                return Refused(f"This undo stopped: {SUPERSEDED}.")
        already = set(removed)
        left = [a for a in operation.added_ids if a not in already]
        fields = {
            "require": {"run_token": token},
            "run_token": None,
            "removed_ids": removed,
            "outcome": outcome,
            "errors": list(operation.errors) + errors,
            "enqueue": self.owed(
                "undone",
                operation,
                by=operation.undone_by,
                removed=removed,
                left=left,
                errors=errors,
            ),
        }
        if left:
            # Back to what it was, so that Undo removes the rest (same undo window).
            back = operation.undo_from or "done"
            final = self.store.transition(
                operation.id, State.UNDOING, back, finished_at=operation.finished_at, **fields
            )
        else:
            final = self.store.transition(
                operation.id, State.UNDOING, State.UNDONE, undone_at=self.now(), **fields
            )
        if final is None:
            return Refused(f"This undo stopped: {SUPERSEDED}.")
        if left and len(removed) == before and not in_doubt:
            return Refused("Undo failed; nothing was removed: " + escape_mrkdwn("; ".join(errors)))
        library = library or self._fresh_library(operation.library_id)
        return Undone(final, library, errors)

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

    def expire_stale_previews(self) -> int:
        """Close previews nobody clicked within the confirmation TTL (so history is honest)."""
        return self.store.expire_pending(self.now() - timedelta(seconds=self.confirm_ttl))

    def _uplynk_message(self, exc: UplynkError, ref: LibraryRef) -> str:
        if isinstance(exc, UplynkNotFound) and ref.id:
            return f"Uplynk has no library with id `{ref.id}` (404)."
        return escape_mrkdwn(exc.user_message)
