"""What each workflow event owes Slack: the outbox entries it queues (docs/SPEC.md §12)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Set
from typing import Any

from bot.core.approvals.outcomes import ApprovalView
from bot.core.approvals.rules import REQUEST_KEY
from bot.core.delivery.outbox import SUMMARY, Entry, Owed
from bot.core.home import home_refresh
from bot.core.operation import Operation
from bot.slack import blocks
from bot.slack.approvals import blocks as approval_blocks

log = logging.getLogger(__name__)

NOTIFY = "notify"  # the key of an operation's notification-thread parent
#: Events that end an approval request (approval_revoked: approved, but the requester lost
#: their [[allow]] meanwhile, docs/SPEC.md §7).
CLOSING = ("approval_rejected", "approval_expired", "approval_withdrawn", "approval_revoked")


class Owing:
    """`owed(event, operation, **facts)` for the workflow: the entries each event queues.

    approval_channel: where approval requests go; unset, a DM to each of `approvers(view)`.
    asked(operation): whether the operation went through approval (its thread's parent was
    posted before it ran, and is updated in place with the outcome).
    """

    def __init__(
        self,
        notify_channel: str | None,
        approval_channel: str | None = None,
        approvers: Callable[[ApprovalView], list[str]] | None = None,
        asked: Callable[[Operation], bool] | None = None,
        home_every: float | None = None,
        home_watchers: Callable[[Operation], list[str]] | None = None,
    ):
        self.notify_channel = notify_channel
        self.approval_channel = approval_channel
        self.approvers = approvers or (lambda view: [])
        self.asked = asked or (lambda operation: False)
        self.home_every = home_every
        self.home_watchers = home_watchers or (lambda operation: [])

    def __call__(self, event: str, operation: Operation, **facts: Any) -> list[Owed]:
        entries = self._events(event, operation, **facts)
        if self.home_every is None:
            return entries
        # What changed shows on the requester's App Home, and an approval request on the
        # Homes of those who may decide it (docs/SPEC.md §14): published again, paced.
        users = [operation.user_id]
        if event.startswith("approval_"):
            users += self.home_watchers(operation)
        return entries + home_refresh(users, self.home_every)

    def _events(self, event: str, operation: Operation, **facts: Any) -> list[Owed]:
        if event.startswith("approval_"):
            return self._approval(event, operation, facts)
        if event.startswith("schedule"):
            return self._schedule(event, operation, facts)
        if event == "executed":
            when = blocks.slack_date(operation.run_at) if operation.run_at else ""
            ran = [f"Ran as scheduled (for {when})."] if operation.run_at else []
            entries = self._summary(operation) + self.thread(operation, *ran, details=True)
            return entries + self._parent_updated(operation, force=bool(operation.run_at))
        if event == "retried":
            text = f"<@{facts['by']}> retried: {_counts(facts)}"
            if facts.get("added_now"):
                text += (
                    f"\nAdded now: {blocks.id_list(facts['added_now'], 50, operation.asset_titles)}"
                )
            entries = self.thread(operation, text)
            if facts.get("was") == "interrupted" and not summarized(operation):
                # Cut off by a crash, it was never reported: report it as a first run would be.
                entries = self._summary(operation) + self.thread(operation, text, details=True)
            return entries
        if event == "undone":
            return self.thread(operation, _undone_text(facts, operation.asset_titles))
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
            if not summarized(operation):
                # Cut off before its report: report it as a first run would be.
                details = self.thread(operation, text, details=True)
                entries = [*self._summary(operation), dm, *details]
            return entries + self._parent_updated(operation)
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

    def _approval(self, event: str, operation: Operation, facts: dict[str, Any]) -> list[Owed]:
        """docs/SPEC.md §7's messages: the request (one per channel or approver), its in-place
        updates, the requester's notice and the thread's story, rendered when delivered."""
        op_id = operation.id
        if event == "approval_requested":
            view: ApprovalView = facts["view"]
            count = blocks.plural(len(operation.new_ids), "asset")
            text = (
                f"<@{operation.user_id}> asked for approval to add {count} "
                f"(needs {blocks.plural(view.needed, 'approval')})"
            )
            return self._requests(view) + self.thread(operation, text)
        updates = [
            Owed(
                "update",
                "approval_request",
                channel=key.removeprefix(REQUEST_KEY),
                operation_id=op_id,
                target=key,
            )
            for key in facts.get("targets", ())
        ]
        if event == "approval_approved":
            text = f"<@{facts['by']}> approved ({facts['got']} of {facts['needed']})"
            return updates + self.thread(operation, text)
        if event == "approval_ready":
            text = f"Approved by {approval_blocks.people(facts['approved_by'])}: running"
            if facts.get("run_at"):
                text = text.replace("running", f"runs {blocks.slack_date(facts['run_at'])}")
            return updates + self.thread(operation, text)
        if event not in CLOSING:
            raise ValueError(f"unknown approval event {event!r}")
        entries = updates
        # A withdrawal by the requester's own click needs no notice; an admin's does.
        if event != "approval_withdrawn" or facts.get("by") not in (None, operation.user_id):
            # On the confirmation's response_url while it lasts, else a direct message.
            entries.append(
                Owed(
                    "dm",
                    "approval_closed",
                    channel=operation.user_id,
                    operation_id=op_id,
                    args={"via_response_url": True},
                )
            )
        if self.notify_channel:
            entries += self.thread(operation)
            entries.append(
                Owed("post", "approval_status", self.notify_channel, op_id, thread=NOTIFY)
            )
        return entries + self._parent_updated(operation, force=True)

    def _schedule(self, event: str, operation: Operation, facts: dict[str, Any]) -> list[Owed]:
        """docs/SPEC.md §15: the thread opens when an add is scheduled; a cancel, a missed time
        or a permission lost by then end it, and the requester hears of the last two."""
        when = blocks.slack_date(operation.run_at)
        count = blocks.plural(len(operation.new_ids), "asset")
        if event == "scheduled":
            return self.thread(operation, f"<@{facts['by']}> scheduled {count} for {when}.")
        if event == "schedule_cancelled":
            text = f"<@{facts['by']}> cancelled this scheduled add; nothing was added."
            return self.thread(operation, text) + self._parent_updated(operation, force=True)
        if event == "schedule_missed":
            text = (
                f"Your scheduled add of {count} to *{blocks.name(operation.library_name)}* "
                f"(for {when}) was missed: no instance of the bot was running then, and it is "
                "now past ADDTOLIB_SCHEDULE_GRACE. Nothing was added; run the command again."
            )
            thread = "Missed its time (no instance was running); expired, nothing was added."
        elif event == "schedule_denied":
            reason = blocks.escape(facts.get("reason") or "")
            text = (
                f"Your scheduled add of {count} to *{blocks.name(operation.library_name)}* "
                f"did not run at {when}: you may no longer add there ({reason}). "
                "Nothing was added."
            )
            thread = f"Not run at its time: <@{operation.user_id}> may no longer add here."
        else:
            raise ValueError(f"unknown schedule event {event!r}")
        dm = Owed(
            "dm", "text", channel=operation.user_id, operation_id=operation.id, args={"text": text}
        )
        return [dm, *self.thread(operation, thread), *self._parent_updated(operation, force=True)]

    def _requests(self, view: ApprovalView) -> list[Owed]:
        op_id = view.operation.id
        if self.approval_channel:
            channel = self.approval_channel
            return [Owed("post", "approval_request", channel, op_id, key=REQUEST_KEY + channel)]
        return [
            Owed("dm", "approval_request", user, op_id, key=REQUEST_KEY + user)
            for user in self.approvers(view)
        ]

    def _parent_updated(self, operation: Operation, force: bool = False) -> list[Owed]:
        """An approval's thread parent was posted before the outcome: update it in place."""
        if not self.notify_channel or not (force or self.asked(operation)):
            return []
        return [
            Owed(
                "update",
                "notify_parent",
                channel=self.notify_channel,
                operation_id=operation.id,
                target=NOTIFY,
            )
        ]

    def _summary(self, operation: Operation) -> list[Owed]:
        return [
            Owed(
                "post",
                "summary",
                channel=operation.channel_id,
                operation_id=operation.id,
                key=SUMMARY,
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


def approval_recipients(
    view: ApprovalView, members_of: Callable[[str], Set[str]], admins: Iterable[str]
) -> list[str]:
    """Whom to DM an approval request when no approval channel is set: the named approvers,
    else the members of the approver groups, else the admins (never the requester)."""
    operation = view.operation
    parties = {operation.user_id, operation.confirmed_by}
    users = [u for u in view.approvers if u not in parties]
    if not users:  # only groups (or admins) may approve: ask their members
        members = set().union(*(members_of(g) for g in view.approver_groups))
        users = sorted(members - parties)
    if not users:
        users = sorted(set(admins) - parties)
    return users


def problem_notice(entry: Entry, operation: Operation | None, reason: str) -> list[Owed]:
    """When the notification thread cannot be started, or an approval request cannot be
    delivered, the requester hears it (docs/SPEC.md §3.7, docs/SPEC.md §7)."""
    if entry.kind not in ("post", "dm") or operation is None or not operation.channel_id:
        return []
    if entry.template == "notify_parent":
        text = (
            f"The change was made, but I could not post it to <#{entry.channel}> ({reason}). "
            "Invite me to that channel so the team sees future changes."
        )
    elif entry.template == "approval_request":
        where = f"<#{entry.channel}>" if entry.kind == "post" else f"<@{entry.channel}>"
        text = (
            f"I could not deliver your approval request to {where} ({reason}); "
            "ask an admin to check ADDTOLIB_APPROVAL_CHANNEL. Nothing was added."
        )
    else:
        return []
    return [
        Owed(
            "ephemeral",
            "text",
            channel=operation.channel_id,
            user_id=operation.user_id,
            args={"text": text},
        )
    ]


def summarized(operation: Operation) -> bool:
    """Whether a summary was queued for it already (queued, sent, or sent through the
    response_url, which records no ts): a run never queues a second one."""
    return bool(operation.summary_queued_at or operation.summary_ts)


def _undone_text(facts: dict[str, Any], titles: dict[str, str]) -> str:
    by, removed, left = f"<@{facts['by']}>", facts["removed"], facts.get("left") or []
    if not left:
        text = f"{by} undid this: removed {blocks.id_list(removed, 50, titles)}"
    elif removed:
        text = (
            f"{by} undid part of this: removed {blocks.id_list(removed, 50, titles)}; "
            f"{len(left)} still in the library: {blocks.id_list(left, 50, titles)}. "
            "Undo removes the rest."
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
