"""How each owed message is rendered at delivery, from the operation as stored then."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.core.approvals.outcomes import ApprovalView
from bot.core.delivery.outbox import Entry
from bot.core.operation import Operation
from bot.core.steps import TEMPLATE as STEP
from bot.core.steps import Step
from bot.slack import blocks
from bot.slack.approvals import blocks as approval_blocks
from bot.uplynk.client import UplynkClient
from bot.uplynk.errors import UplynkError
from bot.uplynk.models import Library

log = logging.getLogger(__name__)

APPROVAL_TEMPLATES = ("approval_request", "approval_status", "approval_closed")
LIBRARY_CACHE_SECONDS = 60


class Renderer:
    """Turns an outbox entry and its operation (as stored now) into chat.* arguments."""

    def __init__(
        self,
        uplynk: UplynkClient | None,
        approvers_of: Callable[[Operation], list[str]] | None = None,
        approval_view: Callable[[Operation], ApprovalView] | None = None,
        home: Callable[[str], dict[str, Any]] | None = None,
        step: Callable[[str], Step | None] | None = None,
    ):
        self.uplynk = uplynk
        self.home = home  # user id -> the App Home view (bot.slack.home.publish.HomeRenderer)
        self.step = step  # execution id -> its Workflow Builder step (bot.core.steps)
        self.approvers_of = approvers_of or (lambda operation: [])
        self.approval_view = approval_view
        self._libraries: dict[str, tuple[float, Library]] = {}
        self._lock = threading.Lock()

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
            library = self.library(operation.library_id)
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

    def library(self, library_id: str | None) -> Library | None:
        """The library's facts for a summary (briefly cached: 30 summaries, one look-up)."""
        if not library_id or self.uplynk is None:
            return None
        with self._lock:
            cached = self._libraries.get(library_id)
        if cached and time.monotonic() - cached[0] < LIBRARY_CACHE_SECONDS:
            return cached[1]
        try:
            library = self.uplynk.get_library(library_id)
        except UplynkError as exc:
            log.warning("summary without library facts (%s): %s", library_id, exc)
            return None
        with self._lock:
            self._libraries[library_id] = (time.monotonic(), library)
        return library
