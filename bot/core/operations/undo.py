"""Undo (docs/SPEC.md §3.8): remove exactly what an operation added, resumably."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from bot.core.operation import Operation, State
from bot.core.operations.base import SUPERSEDED, UseCase, new_token
from bot.core.outcomes import Refused, Undone
from bot.core.phrases import already_handled, duration, id_sample
from bot.core.text import escape_mrkdwn
from bot.uplynk.errors import UplynkError

log = logging.getLogger(__name__)

FINISHED_ADDING = (State.DONE, State.PARTIAL)
REMOVED = "removed by undo"


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


class Undoing(UseCase):
    """undo, within the undo window; an undo cut off is handed back to be resumed."""

    def _gone_from(self, library_id: str, ids: set[str]) -> set[str]:
        """Those of `ids` no longer in the library (none, if the look-up fails)."""
        try:
            return ids - self._held(library_id, sorted(ids))
        except UplynkError as exc:
            log.warning("re-check before removing failed (%s); removing as recorded", exc)
            return set()

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
        token = new_token()
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
        assert operation.library_id is not None  # only a planned operation is undone
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
        fields: dict[str, Any] = {
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
