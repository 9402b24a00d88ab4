"""The operation workflow: plan, confirm, execute, cancel, undo and retry, with no Slack in it."""

from __future__ import annotations

import difflib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from bot.core.batch_recorder import BatchRecorder
from bot.core.parsing import AddCommand, LibraryRef
from bot.core.policy import Policy
from bot.core.results import (
    Executed,
    NeedsPick,
    Planned,
    Progress,
    Refused,
    Requester,
    Undone,
)
from bot.core.store import Operation, OperationStore
from bot.core.wording import already_handled, duration, id_sample
from bot.uplynk.client import UplynkClient
from bot.uplynk.errors import UplynkError, UplynkNotFound
from bot.uplynk.models import BatchResult, Library

log = logging.getLogger(__name__)

LIBRARY_ID = re.compile(r"^[0-9a-f]{32}$")
FINISHED_ADDING = ("done", "partial")
RETRYABLE = ("partial", "failed", "interrupted")
# The outcome of an asset someone else added between the preview and the execution.
ALREADY_PRESENT = "already in library"


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
    ):
        self.store = store
        self.uplynk = uplynk
        self.policy = policy
        self.groups_of = groups_of
        self.confirm_ttl = confirm_ttl
        self.undo_window = undo_window
        self.now = now
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        # Saves batch progress off the batch loop (see _BatchRecorder); shared, so that an
        # operation does not start a thread of its own.
        self._savers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="addtolib-save")

    # -- planning -------------------------------------------------------------------------

    def plan(
        self, who: Requester, command: AddCommand, response_url: str | None = None
    ) -> Planned | NeedsPick | Refused:
        """Resolve the library, check permission, look up the assets and store a preview."""
        if not self._may_add_anywhere(who):
            return self._deny(who, command.asset_ids, None, None, self._blanket_refusal(who))
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
        return self._preview(who, found, list(command.asset_ids), response_url)

    def pick_library(
        self, operation_id: str, library_id: str, user_id: str
    ) -> Planned | NeedsPick | Refused:
        """Continue a plan once the requester picked one of several libraries."""
        operation = self.store.get(operation_id)
        if operation is None or operation.library_id is not None:
            return Refused(
                "That choice no longer matches a waiting request; run the command again."
            )
        if operation.user_id != user_id:
            return Refused(f"Only <@{operation.user_id}> can choose the library for this request.")
        if operation.state != "pending":
            return Refused(f"This request is already {operation.state}.")
        try:
            library = self.uplynk.get_library(library_id)
        except UplynkError as exc:
            return Refused(self._uplynk_message(exc, LibraryRef(id=library_id, name=None)))
        who = Requester(operation.user_id, operation.team_id, operation.channel_id)
        planned = self._preview(
            who, library, list(operation.requested_ids), operation.response_url, operation
        )
        return planned

    def _preview(
        self,
        who: Requester,
        library: Library,
        asset_ids: list[str],
        response_url: str | None,
        existing: Operation | None = None,
    ) -> Planned | Refused:
        decision = self.policy.check(who.user_id, library.id, who.channel_id, self.groups_of)
        if not decision.allowed:
            if existing is not None:
                self.store.transition(
                    existing.id, "pending", "denied", denial_reason=decision.reason
                )
                return Refused(f"You may not add to *{library.desc}*: {decision.reason}")
            return self._deny(who, asset_ids, library, response_url, decision.reason)
        try:
            assets = self.uplynk.get_assets(asset_ids)
        except UplynkError as exc:
            return Refused(f"Could not look up the assets: {exc.user_message}")
        missing = [a for a in asset_ids if a not in assets]
        present = [a for a in asset_ids if a in assets and library.id in assets[a].libraries]
        new = [a for a in asset_ids if a in assets and library.id not in assets[a].libraries]
        preview = {
            "library_id": library.id,
            "library_name": library.desc,
            "new_ids": new,
            "present_ids": present,
            "missing_ids": missing,
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
            self.store.update(existing.id, **preview)
            operation = self.store.get(existing.id)
        if not new:
            # Nothing to add: the preview is the whole answer; the operation is closed.
            operation = self.store.transition(operation.id, "pending", "done") or operation
        return Planned(operation, library)

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
        hint = ", ".join(f"*{d}*" for d in close) if close else "none"
        return Refused(f"No library is named *{name}*. Closest matches: {hint}.")

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
        where = f" to *{library.desc}*" if library else ""
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

    def confirm(self, operation_id: str, user_id: str) -> Operation | Refused:
        """Claim a pending operation for execution: once, within the TTL, with permission."""
        operation = self._load_for(operation_id, user_id, "confirm")
        if isinstance(operation, Refused):
            return operation
        if operation.state != "pending":
            return Refused(already_handled(operation))
        if operation.library_id is None:
            return Refused(
                "This request is still waiting for a library to be picked; pick one of the "
                "libraries offered first. Nothing was added."
            )
        if self.now() - operation.created_at > timedelta(seconds=self.confirm_ttl):
            self.store.transition(operation.id, "pending", "expired")
            return Refused(
                f"This confirmation expired (confirmations last {duration(self.confirm_ttl)}); "
                "nothing was added. Run the command again."
            )
        withdrawn = self._permission_withdrawn(operation, user_id)
        if withdrawn:
            self.store.transition(operation.id, "pending", "denied", denial_reason=withdrawn)
            return Refused(f"Permission was withdrawn since the preview: {withdrawn}")
        claimed = self.store.transition(
            operation.id, "pending", "confirmed", confirmed_by=user_id, confirmed_at=self.now()
        )
        if claimed is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        return claimed

    def cancel(self, operation_id: str, user_id: str) -> Operation | Refused:
        """Cancel a pending operation."""
        operation = self._load_for(operation_id, user_id, "cancel")
        if isinstance(operation, Refused):
            return operation
        cancelled = self.store.transition(operation.id, "pending", "cancelled")
        if cancelled is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        return cancelled

    # -- execution --------------------------------------------------------------------------

    def execute(self, operation: Operation, progress: Progress | None = None) -> Executed:
        """Add the operation's new assets, batch by batch, recording each batch's outcome."""
        running = self.store.transition(operation.id, "confirmed", "running")
        if running is None:
            return Executed(self.store.get(operation.id) or operation, None, ["already handled"])
        with self._executing(running.id):
            return self._add(running, list(running.new_ids), progress)

    def retry(
        self, operation_id: str, user_id: str, progress: Progress | None = None
    ) -> Executed | Refused:
        """Re-send only the assets that failed (or never ran) for a partial or broken operation."""
        operation = self._load_for(operation_id, user_id, "retry")
        if isinstance(operation, Refused):
            return operation
        if operation.state not in RETRYABLE:
            return Refused(already_handled(operation))
        withdrawn = self._permission_withdrawn(operation, user_id)
        if withdrawn:
            return Refused(f"Permission was withdrawn: {withdrawn}")
        running = self.store.transition(operation.id, RETRYABLE, "running", error=None)
        if running is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        added = set(running.added_ids)
        todo = [
            a
            for a in running.new_ids
            if a not in added and running.outcome.get(a) != ALREADY_PRESENT
        ]
        # A run cut off by a crash may have landed its last batch without recording it.
        with self._executing(running.id):
            return self._add(running, todo, progress, resumed=operation.state == "interrupted")

    @contextmanager
    def _executing(self, operation_id: str) -> Iterator[None]:
        """Mark an operation as executed by this process while the block runs (heartbeat)."""
        with self._running_lock:
            self._running.add(operation_id)
        try:
            yield
        finally:
            with self._running_lock:
                self._running.discard(operation_id)

    def running_here(self) -> list[str]:
        """Ids of the operations this process is executing now (for the heartbeat)."""
        with self._running_lock:
            return sorted(self._running)

    def _add(
        self,
        operation: Operation,
        todo: list[str],
        progress: Progress | None,
        resumed: bool = False,
    ) -> Executed:
        added = list(operation.added_ids)
        outcome = dict(operation.outcome)
        for asset_id in operation.present_ids:
            outcome.setdefault(asset_id, ALREADY_PRESENT)
        for asset_id in operation.missing_ids:
            outcome[asset_id] = "not found"
        todo, raced = self._still_new(operation.library_id, todo)
        if resumed:
            # The preview found these absent and the interrupted run was sending them: they
            # are this operation's work (so undo removes them), and are not sent again.
            added.extend(raced)
            for asset_id in raced:
                outcome[asset_id] = "added"
        else:
            for asset_id in raced:
                outcome[asset_id] = ALREADY_PRESENT
        if raced:
            self.store.update(operation.id, added_ids=added, outcome=outcome)
        errors: list[str] = []
        failed: list[str] = []
        total = len(todo)
        batch_size = max(1, self.uplynk.batch_size)
        batches = -(-total // batch_size)
        counter = iter(range(1, batches + 1))

        def on_batch(batch: BatchResult, done: int, _total: int) -> None:
            number = next(counter, batches)
            if batch.ok:
                added.extend(batch.ids)
                for asset_id in batch.ids:
                    outcome[asset_id] = "added"
            else:
                failed.extend(batch.ids)
                message = batch.error.user_message if batch.error else "unknown error"
                errors.append(f"batch {number} of {batches} ({id_sample(batch.ids)}): {message}")
                for asset_id in batch.ids:
                    outcome[asset_id] = f"failed: {message}"
            recorder.record(added, outcome, done, total)

        library = None
        recorder = BatchRecorder(self._savers, self.store, operation.id, progress)
        try:
            recorder.start(total)
            if todo:
                result = self.uplynk.add_assets(operation.library_id, todo, on_batch=on_batch)
                library = result.last_library
        finally:
            recorder.close()  # every save lands before the final transition below
        if failed and not set(todo) - set(failed):
            state = "failed"
        elif failed:
            state = "partial"
        else:
            state = "done"
        finished = self.store.transition(
            operation.id,
            "running",
            state,
            added_ids=added,
            failed_ids=failed,
            outcome=outcome,
            errors=list(operation.errors) + errors,
            error="; ".join(errors) or None,
            finished_at=self.now(),
        )
        if library is None or not failed:
            library = self._fresh_library(operation.library_id) or library
        return Executed(finished or self.store.get(operation.id), library, errors)

    def _still_new(self, library_id: str, todo: list[str]) -> tuple[list[str], list[str]]:
        """Split todo into (still new, added by someone else since the preview)."""
        if not todo:
            return todo, []
        try:
            assets = self.uplynk.get_assets(todo)
        except UplynkError as exc:
            log.warning("re-check before adding failed (%s); adding as previewed", exc)
            return todo, []
        raced = [a for a in todo if a in assets and library_id in assets[a].libraries]
        return [a for a in todo if a not in raced], raced

    def _fresh_library(self, library_id: str) -> Library | None:
        try:
            return self.uplynk.get_library(library_id)
        except UplynkError as exc:
            log.warning("could not refresh library %s: %s", library_id, exc)
            return None

    # -- undo -------------------------------------------------------------------------------

    def undo(self, operation_id: str, user_id: str) -> Undone | Refused:
        """Remove exactly the assets this operation added; once, within the undo window."""
        operation = self._load_for(operation_id, user_id, "undo")
        if isinstance(operation, Refused):
            return operation
        if operation.state not in FINISHED_ADDING:
            return Refused(already_handled(operation))
        if not operation.added_ids:
            return Refused("This operation added nothing, so there is nothing to undo.")
        finished = operation.finished_at or operation.created_at
        if self.now() - finished > timedelta(seconds=self.undo_window):
            return Refused(
                "Too late to undo: operations can be undone for "
                f"{duration(self.undo_window)} after they finish; nothing was removed."
            )
        claimed = self.store.transition(
            operation.id, FINISHED_ADDING, "undone", undone_by=user_id, undone_at=self.now()
        )
        if claimed is None:
            return Refused(already_handled(self.store.get(operation.id) or operation))
        result = self.uplynk.remove_assets(operation.library_id, list(claimed.added_ids))
        removed = result.succeeded_ids
        errors = [
            f"{len(b.ids)} assets: {b.error.user_message}" for b in result.batches if not b.ok
        ]
        outcome = dict(claimed.outcome)
        for asset_id in removed:
            outcome[asset_id] = "removed by undo"
        if not removed:
            # Nothing came out: the operation stands as it was, so it can be undone later.
            self.store.transition(
                operation.id,
                "undone",
                operation.state,
                undone_by=None,
                undone_at=None,
                finished_at=operation.finished_at,  # keep the undo window where it was
                errors=list(claimed.errors) + errors,
            )
            return Refused("Undo failed; nothing was removed: " + "; ".join(errors))
        self.store.update(
            operation.id,
            removed_ids=removed,
            outcome=outcome,
            errors=list(claimed.errors) + errors,
        )
        library = result.last_library or self._fresh_library(operation.library_id)
        return Undone(self.store.get(operation.id), library, errors)

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
        return self.store.interrupt_running(idle_for=idle_for)

    def expire_stale_previews(self) -> int:
        """Close previews nobody clicked within the confirmation TTL (so history is honest)."""
        return self.store.expire_pending(self.now() - timedelta(seconds=self.confirm_ttl))

    def _uplynk_message(self, exc: UplynkError, ref: LibraryRef) -> str:
        if isinstance(exc, UplynkNotFound) and ref.id:
            return f"Uplynk has no library with id `{ref.id}` (404)."
        return exc.user_message
