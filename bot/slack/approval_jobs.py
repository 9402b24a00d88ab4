"""Approvals in Slack (SPEC 7): post requests, answer Approve/Deny, run what was approved."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt.context.respond import Respond as WebhookRespond

from bot.core.results import ApprovalEvent, ApprovalView, AwaitingApproval, Refused
from bot.core.store import Operation
from bot.slack import blocks, jobs
from bot.slack.services import Services

log = logging.getLogger(__name__)


def request_approval(services: Services, respond: jobs.Respond, awaiting: AwaitingApproval):
    """Post the request to the approval channel (or each approver's DM), then tell the
    requester what they are waiting for."""
    view = awaiting.view
    operation = view.operation
    message = blocks.approval_request(view)
    posted = []
    for channel in _recipients(services, view):
        where = jobs.post_message(services, channel, message)
        if where is not None:
            posted.append(where)
    services.workflow.approvals.remember(
        operation.id, messages=posted, requester_url=getattr(respond, "response_url", None)
    )
    jobs._ephemeral(respond, blocks.awaiting_approval(view), replace=True)
    if not posted:
        jobs._ephemeral(
            respond,
            blocks.error(
                "I could not deliver the approval request to anyone (see the bot's log); "
                "ask an admin to check ADDTOLIB_APPROVAL_CHANNEL. Nothing was added."
            ),
        )
    count = blocks.plural(len(operation.new_ids), "asset")
    jobs._notify(
        services,
        operation,
        f"<@{operation.user_id}> asked for approval to add {count} "
        f"(needs {blocks.plural(view.needed, 'approval')})",
    )


@jobs._safely
def approve(services: Services, respond: jobs.Respond, operation_id: str, user_id: str) -> None:
    _answer(services, respond, services.workflow.approvals.approve(operation_id, user_id))


@jobs._safely
def deny(services: Services, respond: jobs.Respond, operation_id: str, user_id: str) -> None:
    _answer(services, respond, services.workflow.approvals.deny(operation_id, user_id))


def _answer(services: Services, respond: jobs.Respond, result: ApprovalEvent | Refused) -> None:
    if isinstance(result, Refused):  # shown to the clicker alone; nothing changed
        jobs._ephemeral(respond, blocks.error(result.message))
        return
    view, operation, by = result.view, result.view.operation, result.by
    if result.kind == "expired":  # this late click found it expired
        closed(services, view)
        jobs._ephemeral(respond, blocks.error(services.workflow.approvals.too_late()))
        return
    if result.kind == "rejected":
        closed(services, view)
        return
    _update_requests(services, view)
    if result.kind == "approved":
        if operation.state == "awaiting_approval":
            got = len(view.approved_by)
            jobs._notify(services, operation, f"<@{by}> approved ({got} of {got + view.missing})")
            more = f"waiting for {view.missing} more" if view.missing else "it will run now"
            jobs._ephemeral(respond, blocks.info(f"Your approval is recorded; {more}."))
        else:
            jobs._ephemeral(respond, blocks.info("Your approval is recorded; it is running."))
        return
    jobs._notify(services, operation, f"Approved by {blocks.people(view.approved_by)}: running")
    _run(services, result.run)


def _run(services: Services, operation: Operation) -> None:
    """Execute an approved operation, reporting to the requester as a direct confirm would."""
    name = operation.library_name or operation.library_id
    progress = jobs.ProgressLine(
        _requester(services, operation, fallback=False),
        name,
        services.settings.uplynk_batch_size,
    )
    executed = services.workflow.execute(operation, progress)
    jobs._report(services, _requester(services, operation, fallback=True), executed)


def closed(services: Services, view: ApprovalView) -> None:
    """A request that ended without running: update it, tell the requester and the thread."""
    operation = view.operation
    _update_requests(services, view)
    if operation.state != "cancelled":  # a withdrawal was the requester's own click
        _requester(services, operation, fallback=True)(
            response_type="ephemeral",
            replace_original=True,
            **blocks.approval_closed(view).kwargs(),
        )
    jobs._notify(services, operation, blocks.approval_status(view))


def withdrawn(services: Services, operation: Operation) -> None:
    """The requester cancelled: if approvers were asked, their request says so."""
    request = services.workflow.approvals.store.get(operation.id)
    if request is not None:
        closed(services, services.workflow.approvals.view(operation))


def report_expired(services: Services, events: list[ApprovalEvent]) -> None:
    """The lease sweep expired these requests (run on the work pool, off the heartbeat)."""
    for event in events:
        try:
            closed(services, event.view)
        except Exception:
            log.exception("could not report expired request %s", event.view.operation.id)


def _update_requests(services: Services, view: ApprovalView) -> None:
    """chat.update every copy of the request; a late interim update is corrected at once."""
    approvals = services.workflow.approvals
    request = approvals.store.get(view.operation.id)
    if request is None:
        return
    for channel, ts in request.messages:
        jobs.update_message(services, channel, ts, blocks.approval_request(view))
    if view.operation.state != "awaiting_approval":
        return
    # A decision may have landed while we showed "approved so far": its own update may have
    # gone out before ours, so show the decision again.
    current = services.store.get(view.operation.id)
    if current is not None and current.state != "awaiting_approval":
        fresh = blocks.approval_request(approvals.view(current))
        for channel, ts in request.messages:
            jobs.update_message(services, channel, ts, fresh)


def _recipients(services: Services, view: ApprovalView) -> list[str]:
    """The approval channel, else a DM to each named approver (never the requester)."""
    if services.settings.approval_channel:
        return [services.settings.approval_channel]
    operation = view.operation
    parties = {operation.user_id, operation.confirmed_by}
    users = [u for u in view.approvers if u not in parties]
    if not users:  # only groups (or admins) may approve: ask their members
        members = set().union(*(services.usergroups.members(g) for g in view.approver_groups))
        users = sorted(members - parties)
    if not users:
        users = sorted(services.policy.admins - parties)
    return users


def _requester(services: Services, operation: Operation, fallback: bool) -> Callable[..., None]:
    """Answer the requester on their confirmation's response_url; with `fallback`, by DM
    when that URL is used up or expired (approvals can take longer than its 30 minutes)."""
    request = services.workflow.approvals.store.get(operation.id)
    url = request.requester_url if request else None

    def send(**message) -> None:
        if url:
            answer = WebhookRespond(response_url=url)(**message)
            if answer.status_code == 200:
                return
            log.info("requester's response_url answered %s", answer.status_code)
        if fallback:
            content = {k: message[k] for k in ("text", "blocks") if k in message}
            jobs.post_message(services, operation.user_id, blocks.Message(**content))

    return send
