"""Workflow Builder steps (docs/SPEC.md §13): one operation per execution, completed once."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.delivery.outbox import Owed, insert_owed
from bot.core.operation import TERMINAL, Operation, State
from bot.core.parsing import AddCommand, LibraryRef, ParseError, parse_asset_list
from bot.core.store import OperationStore
from bot.core.tables import operations, workflow_steps

log = logging.getLogger(__name__)

#: The operation states that end a step: `done` completes it, the others fail it. Not
#: `interrupted` (a resume carries on) nor `undone` (it follows `done`, which ended the step).
ENDS = TERMINAL - {State.UNDONE, State.INTERRUPTED}
#: Slack revokes an execution's bot_access_token at completion or after about 15 minutes:
#: past that it is neither used nor kept.
TOKEN_LIFE = timedelta(minutes=15)
#: The outbox template of a completion (bot.slack.delivery renders it from the step's row).
TEMPLATE = "step"
MAX_REASON = 300
#: The step's callback id (manifest.yml `functions`) and its input and output names.
CALLBACK_ID = "addtolib_add_assets"
INPUTS = ("library", "asset_ids", "requester", "channel")
OUTPUTS = ("operation_id", "added", "already_present", "not_found")
_LIBRARY_ID = re.compile(r"[0-9a-fA-F]{32}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def requester_of(inputs: Mapping[str, Any]) -> str | None:
    """The `requester` input when it is a Slack user id."""
    value = inputs.get("requester")
    return value if isinstance(value, str) and _USER_ID.fullmatch(value) else None


def step_command(inputs: Mapping[str, Any], max_assets: int = 5000) -> AddCommand:
    """The step's inputs as the command they stand for (the command's grammar for the ids; the
    library input is one id or one name, no quotes needed). Raises ParseError."""
    library = inputs.get("library")
    library = library.strip() if isinstance(library, str) else ""
    if not library:
        raise ParseError("The step's `library` input is empty: give a library id or name.")
    ref = (
        LibraryRef(id=library.lower())
        if _LIBRARY_ID.fullmatch(library)
        else LibraryRef(name=library[:256])
    )
    assets = inputs.get("asset_ids")
    ids, duplicates = parse_asset_list(assets if isinstance(assets, str) else "", max_assets)
    return AddCommand(library=ref, asset_ids=ids, duplicates=duplicates)


@dataclass(frozen=True)
class Step:
    """A row of workflow_steps."""

    execution_id: str
    operation_id: str | None
    requester: str
    inputs: dict[str, Any]
    token: str | None
    state: str  # open | finished (completion owed) | completed (Slack answered)
    success: bool | None
    outputs: dict[str, Any] | None
    reason: str | None
    created_at: datetime
    finished_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Step:
        values = dict(row)
        success = values.pop("success")
        return cls(success=None if success is None else bool(success), **values)

    def live_token(self, now: datetime | None = None) -> str | None:
        """The execution's token while Slack may still accept it, else None."""
        now = now or datetime.now(UTC)
        if self.token and now - self.created_at < TOKEN_LIFE:
            return self.token
        return None

    def __repr__(self) -> str:  # never show the token
        return f"Step({self.execution_id!r}, operation={self.operation_id!r}, {self.state})"


def outputs_of(operation: Operation) -> dict[str, Any]:
    """The step's outputs for a `done` operation (manifest.yml, docs/SPEC.md §13)."""
    present = set(operation.present_ids) | {
        a for a, outcome in operation.outcome.items() if outcome == "already in library"
    }
    return {
        "operation_id": operation.id,
        "added": len(operation.added_ids),
        "already_present": len(present),
        "not_found": len(operation.missing_ids),
    }


def reason_of(operation: Operation) -> str:
    """One line that says how an operation that did not end `done` ended."""
    state = operation.state
    if state == State.CANCELLED:
        text = "Cancelled: nothing was added."
    elif state == State.EXPIRED:
        text = "Expired: nobody confirmed (or approved) it in time; nothing was added."
    elif state == State.DENIED:
        text = f"Refused: {operation.denial_reason or 'not allowed'}. Nothing was added."
    elif state == State.REJECTED:
        who = f" by {operation.rejected_by}" if operation.rejected_by else ""
        text = f"Denied{who} (approval required). Nothing was added."
    elif state == State.PARTIAL:
        text = (
            f"Partly done: {len(operation.added_ids)} added, {len(operation.failed_ids)} failed"
            f" ({operation.error or 'see the summary'})."
        )
    elif state == State.FAILED:
        text = f"Failed: {operation.error or 'nothing was added'}."
    else:
        text = f"Ended in state {state}."
    return one_line(text)


def one_line(text: str) -> str:
    """Slack's Workflow Builder shows the error as plain text: no mrkdwn, one line."""
    text = re.sub(r"<@([A-Z0-9]+)>", r"\1", text)
    text = re.sub(r"<#([A-Z0-9]+)(\|[^>]*)?>", r"#\1", text)
    text = text.replace("*", "").replace("`", "")
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class WorkflowSteps:
    """Step executions in the database; each change is a compare-and-set."""

    def __init__(self, store: OperationStore) -> None:
        self.store = store

    def start(
        self, execution_id: str, requester: str, inputs: Mapping[str, Any], token: str | None
    ) -> bool:
        """Record a new execution; False when it was recorded before (a redelivery)."""
        now = datetime.now(UTC)
        row = {
            "execution_id": execution_id[:64],
            "requester": requester[:64],
            "inputs": dict(inputs),
            "token": token,
            "state": "open",
            "created_at": now,
        }
        self.forget_old_tokens()
        try:
            with self.store.connection() as conn:
                conn.execute(workflow_steps.insert().values(**row))
        except IntegrityError:
            return False
        return True

    def forget_old_tokens(self) -> int:
        """Tokens past their life are kept by nobody (docs/SPEC.md §13)."""
        with self.store.connection() as conn:
            return conn.execute(
                workflow_steps.update()
                .where(
                    workflow_steps.c.token.is_not(None),
                    workflow_steps.c.created_at < datetime.now(UTC) - TOKEN_LIFE,
                )
                .values(token=None)
            ).rowcount

    def link(self, execution_id: str, operation_id: str) -> None:
        """The operation this execution made."""
        with self.store.connection() as conn:
            conn.execute(
                workflow_steps.update()
                .where(workflow_steps.c.execution_id == execution_id)
                .values(operation_id=operation_id)
            )

    def get(self, execution_id: str) -> Step | None:
        query = select(workflow_steps).where(workflow_steps.c.execution_id == execution_id)
        with self.store.connection(begin=False) as conn:
            row = conn.execute(query).mappings().first()
        return Step.from_row(row) if row is not None else None

    def of_operation(self, operation_id: str) -> Step | None:
        query = select(workflow_steps).where(workflow_steps.c.operation_id == operation_id)
        with self.store.connection(begin=False) as conn:
            row = conn.execute(query).mappings().first()
        return Step.from_row(row) if row is not None else None

    def finish(
        self,
        execution_id: str,
        *,
        outputs: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> bool:
        """open -> finished, and the completion queued in the same transaction: exactly one
        caller wins, however many instances see the operation end."""
        if (outputs is None) == (reason is None):
            raise ValueError("a step finishes with outputs (success) or a reason (error)")
        now = datetime.now(UTC)
        with self.store.connection() as conn:
            row = (
                conn.execute(
                    workflow_steps.update()
                    .where(
                        workflow_steps.c.execution_id == execution_id,
                        workflow_steps.c.state == "open",
                    )
                    .values(
                        state="finished",
                        success=1 if outputs is not None else 0,
                        outputs=dict(outputs) if outputs is not None else None,
                        reason=one_line(reason) if reason is not None else None,
                        finished_at=now,
                    )
                    .returning(workflow_steps.c.operation_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                return False
            owed = Owed(
                "complete",
                TEMPLATE,
                operation_id=row["operation_id"],
                args={"execution_id": execution_id},
            )
            insert_owed(conn, [owed])
        self.store.notify_enqueued()
        return True

    def settle(self, operation: Operation) -> bool:
        """The operation ended: finish its step, if it has an open one."""
        if operation.state not in ENDS:
            return False
        step = self.of_operation(operation.id)
        if step is None or step.state != "open":
            return False
        if operation.state == State.DONE:
            return self.finish(step.execution_id, outputs=outputs_of(operation))
        return self.finish(step.execution_id, reason=reason_of(operation))

    def sweep(self) -> int:
        """Finish the open steps whose operations ended by a path that reported no single
        operation (a bulk expiry, a crash between the two writes): the heartbeat's catch-all."""
        self.forget_old_tokens()
        query = (
            select(operations)
            .join(workflow_steps, workflow_steps.c.operation_id == operations.c.id)
            .where(workflow_steps.c.state == "open", operations.c.state.in_(list(ENDS)))
        )
        with self.store.connection(begin=False) as conn:
            ended = [Operation.from_row(r) for r in conn.execute(query).mappings().all()]
        return sum(self.settle(operation) for operation in ended)

    def completed(self, execution_id: str) -> bool:
        """Slack took the completion: record it and forget the token, in one update."""
        with self.store.connection() as conn:
            return (
                conn.execute(
                    workflow_steps.update()
                    .where(
                        workflow_steps.c.execution_id == execution_id,
                        workflow_steps.c.state == "finished",
                    )
                    .values(state="completed", token=None, completed_at=datetime.now(UTC))
                ).rowcount
                == 1
            )
