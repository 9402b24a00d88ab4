"""What each workflow event owes Slack (outbox entries), and how each owed message is rendered."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.core.outbox import Entry, Owed
from bot.core.store import Operation
from bot.slack import blocks
from bot.uplynk.client import UplynkClient
from bot.uplynk.errors import UplynkError
from bot.uplynk.models import Library

log = logging.getLogger(__name__)

NOTIFY = "notify"  # the key of an operation's notification-thread parent
LIBRARY_CACHE_SECONDS = 60


class Owing:
    """`owed(event, operation, **facts)` for the workflow: the entries each event queues."""

    def __init__(self, notify_channel: str | None):
        self.notify_channel = notify_channel

    def __call__(self, event: str, operation: Operation, **facts: Any) -> list[Owed]:
        if event == "executed":
            return self._summary(operation) + self.thread(operation, details=True)
        if event == "retried":
            text = f"<@{facts['by']}> retried: {_counts(facts)}"
            entries = self.thread(operation, text)
            if facts.get("was") == "interrupted" and not operation.summary_ts:
                # Cut off by a crash, it was never reported: report it as a first run would be.
                entries = self._summary(operation) + self.thread(operation, text, details=True)
            return entries
        if event == "undone":
            return self.thread(operation, _undone_text(facts))
        if event == "interrupted":
            # The instance that took it back resumes it at once (event "resumed").
            text = (
                f"Interrupted by a restart after {len(operation.added_ids)} of "
                f"{len(operation.new_ids)} assets; resuming it automatically."
            )
            return self.thread(operation, text)
        if event == "resumed":
            text = f"Resumed automatically after a restart: {_counts(facts)}"
            dm = Owed("dm", "resumed", channel=operation.user_id, operation_id=operation.id)
            entries = [dm, *self.thread(operation, text)]
            if not operation.summary_ts:
                # Cut off before its report: report it as a first run would be.
                details = self.thread(operation, text, details=True)
                entries = [*self._summary(operation), dm, *details]
            return entries
        if event == "undo_interrupted":
            dm = Owed(
                "dm", "undo_interrupted", channel=operation.user_id, operation_id=operation.id
            )
            left = blocks.left_to_undo(operation)
            text = (
                f"Undo interrupted by a restart after removing {len(operation.removed_ids)} of "
                f"{len(operation.added_ids)} assets; {len(left)} left. <@{operation.user_id}> "
                "can press Undo to remove the rest."
            )
            return [dm, *self.thread(operation, text)]
        raise ValueError(f"unknown workflow event {event!r}")

    def _summary(self, operation: Operation) -> list[Owed]:
        return [
            Owed(
                "post",
                "summary",
                channel=operation.channel_id,
                operation_id=operation.id,
                key="summary",
                # Not in that channel (a DM, a private channel): the response_url still reaches it.
                fallback_url=operation.response_url,
            )
        ]

    def thread(self, operation: Operation, *texts: str, details: bool = False) -> list[Owed]:
        """The thread parent (skipped once posted), then the replies, in this order."""
        if not self.notify_channel:
            return []
        channel, op_id = self.notify_channel, operation.id
        entries = [Owed("post", "notify_parent", channel=channel, operation_id=op_id, key=NOTIFY)]
        for text in texts:
            entries.append(
                Owed("post", "event", channel, op_id, args={"text": text}, thread=NOTIFY)
            )
        if details:
            entries.append(Owed("post", "notify_details", channel, op_id, thread=NOTIFY))
        return entries


def message(kind: str, message: blocks.Message, **fields: Any) -> Owed:
    """An owed message built now (approval requests and updates, the modal's summary):
    ``message("post", blocks.x(op), channel=C, operation_id=op.id, key="approval")``."""
    return Owed(kind, "message", args={"message": message.kwargs()}, **fields)


def problem_notice(entry: Entry, operation: Operation | None, reason: str) -> list[Owed]:
    """When the notification thread cannot be started, the requester hears it (SPEC 3.7)."""
    if entry.template != "notify_parent" or operation is None or not operation.channel_id:
        return []
    text = (
        f"The change was made, but I could not post it to <#{entry.channel}> ({reason}). "
        "Invite me to that channel so the team sees future changes."
    )
    return [
        Owed(
            "ephemeral",
            "text",
            channel=operation.channel_id,
            user_id=operation.user_id,
            args={"text": text},
        )
    ]


def _undone_text(facts: dict[str, Any]) -> str:
    by, removed, left = f"<@{facts['by']}>", facts["removed"], facts.get("left") or []
    if not left:
        text = f"{by} undid this: removed {blocks.id_list(removed, 50)}"
    elif removed:
        text = (
            f"{by} undid part of this: removed {blocks.id_list(removed, 50)}; {len(left)} "
            f"still in the library: {blocks.id_list(left, 50)}. Undo removes the rest."
        )
    else:
        text = f"{by} tried to undo this; nothing was removed."
    if facts.get("errors"):
        text += "\nErrors: " + blocks.escape("; ".join(facts["errors"]))
    return text


def _counts(facts: dict[str, Any]) -> str:
    text = f"{facts['added']} added"
    if facts.get("failed"):
        text += f", {facts['failed']} still failing"
    return f"{text} (`{facts['state']}`)"


class Renderer:
    """Turns an outbox entry and its operation (as stored now) into chat.* arguments."""

    def __init__(
        self,
        uplynk: UplynkClient | None,
        approvers_of: Callable[[Operation], list[str]] | None = None,
    ):
        self.uplynk = uplynk
        self.approvers_of = approvers_of or (lambda operation: [])
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
        if operation is None:
            raise LookupError(f"operation {entry.operation_id} of outbox entry {entry.id} is gone")
        if template == "summary":
            library = self.library(operation.library_id)
            return blocks.summary(operation, library, self.approvers_of(operation)).kwargs()
        if template == "notify_parent":
            return blocks.notify_parent(operation).kwargs()
        if template == "notify_details":
            return blocks.notify_details(operation).kwargs()
        if template == "interrupted":
            return blocks.interrupted(operation).kwargs()
        if template == "resumed":
            return blocks.resumed(operation).kwargs()
        if template == "undo_interrupted":
            return blocks.undo_interrupted(operation).kwargs()
        raise LookupError(f"unknown outbox template {template!r}")

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
