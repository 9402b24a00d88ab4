"""How each owed message is rendered at delivery, from the operation as stored then."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.core.approvals.outcomes import ApprovalView
from bot.core.delivery.outbox import Entry
from bot.core.operation import Operation
from bot.core.steps import TEMPLATE as STEP
from bot.core.steps import Step
from bot.slack import blocks
from bot.slack.approvals import blocks as approval_blocks
from bot.uplynk.models import Library

APPROVAL_TEMPLATES = ("approval_request", "approval_status", "approval_closed")


class Renderer:
    """Turns an outbox entry and its operation (as stored now) into chat.* arguments.

    Only the database is read: nothing here calls Slack or Uplynk (docs/SPEC.md §16), so a
    claimed entry's delivery never waits on Uplynk.
    """

    def __init__(
        self,
        approvers_of: Callable[[Operation], list[str]] | None = None,
        approval_view: Callable[[Operation], ApprovalView] | None = None,
        home: Callable[[str], dict[str, Any]] | None = None,
        step: Callable[[str], Step | None] | None = None,
    ):
        self.home = home  # user id -> the App Home view (bot.slack.home.publish.HomeRenderer)
        self.step = step  # execution id -> its Workflow Builder step (bot.core.steps)
        self.approvers_of = approvers_of or (lambda operation: [])
        self.approval_view = approval_view

    def __call__(self, entry: Entry, operation: Operation | None) -> dict[str, Any]:
        template, args = entry.template, entry.args
        if template == "text":
            return {"text": args["text"]}
        if template == "message":  # built by the caller (approvals, the modal)
            return dict(args["message"])
        if template == "event":
            return blocks.notify_event(args["text"]).kwargs()
        if template == "home":
            if self.home is None or not entry.user_id:
                raise LookupError("no App Home to render")
            return {"view": self.home(entry.user_id)}
        if template == STEP:
            return self.completion(args["execution_id"])
        if operation is None:
            raise LookupError(f"operation {entry.operation_id} of outbox entry {entry.id} is gone")
        if template == "summary":
            library = stored_library(operation)
            return blocks.summary(operation, library, self.approvers_of(operation)).kwargs()
        if template == "notify_parent":
            return blocks.notify_parent(operation).kwargs()
        if template == "notify_details":
            return blocks.notify_details(operation).kwargs()
        if template == "resumed":
            return blocks.resumed(operation).kwargs()
        if template == "undo_interrupted":
            return blocks.undo_interrupted(operation).kwargs()
        if template in APPROVAL_TEMPLATES:
            if self.approval_view is None:
                raise LookupError(f"no approvals to render {template!r}")
            # As stored now: a late update shows the latest decision.
            view = self.approval_view(operation)
            if template == "approval_request":
                return approval_blocks.approval_request(view).kwargs()
            if template == "approval_status":
                return blocks.notify_event(approval_blocks.approval_status(view)).kwargs()
            return approval_blocks.approval_closed(view).kwargs()
        raise LookupError(f"unknown outbox template {template!r}")

    def completion(self, execution_id: str) -> dict[str, Any]:
        """The step's completion as stored now: method, its arguments, the token to use."""
        step = self.step(execution_id) if self.step is not None else None
        if step is None or step.success is None:
            raise LookupError(f"no finished workflow step {execution_id!r}")
        call: dict[str, Any] = {"function_execution_id": execution_id}
        if step.success:
            call.update(method="functions.completeSuccess", outputs=dict(step.outputs or {}))
        else:
            call.update(method="functions.completeError", error=step.reason or "failed")
        return {**call, "token": step.live_token()}


def stored_library(operation: Operation) -> Library | None:
    """The library's facts as the preview looked them up (operations.library_facts); None for
    an operation previewed before they were stored (its summary shows the name only)."""
    facts = operation.library_facts
    if not facts or not operation.library_id:
        return None
    return Library(
        id=operation.library_id,
        desc=str(facts.get("desc") or operation.library_name or ""),
        allow_copy=bool(facts.get("allow_copy", False)),
        is_ad=bool(facts.get("is_ad", False)),
        created=str(facts.get("created") or ""),
    )
