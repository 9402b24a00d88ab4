"""Approvals in Slack (docs/SPEC.md §7): tell the requester, answer Approve/Deny, run it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.context.respond import Respond as WebhookRespond

from bot.core.approvals.outcomes import ApprovalEvent, AwaitingApproval
from bot.core.operation import Operation, State
from bot.core.outcomes import Refused
from bot.slack import blocks, replies
from bot.slack.approvals import blocks as approval_blocks
from bot.slack.delivery import owing
from bot.slack.wiring import Services

log = logging.getLogger(__name__)


def request_approval(
    services: Services, respond: replies.Respond, awaiting: AwaitingApproval
) -> None:
    """Tell the requester what they are waiting for. The request itself (to the approval
    channel or each approver's DM) and the thread's event were queued in the outbox with the
    state change, and are delivered from there (docs/SPEC.md §12)."""
    view = awaiting.view
    replies.ephemeral(respond, approval_blocks.awaiting_approval(view), replace=True)
    if not services.workflow.approvals.targets(view.operation.id):
        replies.ephemeral(
            respond,
            blocks.error(
                "Nobody can be asked to approve this (no approver, group member or admin "
                "besides you); ask an admin to check the policy. Nothing was added."
            ),
        )


@replies.safely
def approve(services: Services, respond: replies.Respond, operation_id: str, user_id: str) -> None:
    _answer(services, respond, services.workflow.approvals.approve(operation_id, user_id))


@replies.safely
def deny(services: Services, respond: replies.Respond, operation_id: str, user_id: str) -> None:
    _answer(services, respond, services.workflow.approvals.deny(operation_id, user_id))


def _answer(services: Services, respond: replies.Respond, result: ApprovalEvent | Refused) -> None:
    """Answer the clicker; what the decision owes the request, the requester and the thread
    was queued in the outbox with the decision itself."""
    if isinstance(result, Refused):  # shown to the clicker alone; nothing changed
        replies.ephemeral(respond, blocks.error(result.message))
        return
    view, operation = result.view, result.view.operation
    if result.kind == "expired":  # this late click found it expired
        replies.ephemeral(respond, blocks.error(services.workflow.approvals.too_late()))
        return
    if result.kind == "rejected":
        return
    if result.kind == "revoked":  # the requester lost their [[allow]] meanwhile
        replies.ephemeral(
            respond,
            blocks.error(
                f"Your approval is recorded, but <@{operation.user_id}> may no longer add to "
                "this library under the permission policy now in force, so nothing was run; "
                "they have been told."
            ),
        )
    if result.kind == "scheduled":  # docs/SPEC.md §15: it runs at its time, not now
        when = blocks.slack_date(operation.run_at)
        replies.ephemeral(respond, blocks.info(f"Your approval is recorded; it runs {when}."))
        return
    if result.kind == "approved":
        if operation.state == State.AWAITING_APPROVAL:
            more = f"waiting for {view.missing} more" if view.missing else "it will run now"
            replies.ephemeral(respond, blocks.info(f"Your approval is recorded; {more}."))
        else:
            replies.ephemeral(respond, blocks.info("Your approval is recorded; it is running."))
        return
    assert result.run is not None  # "ready" carries the operation to run
    _run(services, result.run)


def _run(services: Services, operation: Operation) -> None:
    """Execute an approved operation, reporting to the requester as a direct confirm would."""
    name = operation.library_name or operation.library_id
    progress = replies.ProgressLine(
        _requester(services, operation, fallback=False),
        name,
        services.settings.uplynk_batch_size,
    )
    executed = services.workflow.execute(operation, progress)
    replies.report(_requester(services, operation, fallback=True), executed)


def report_expired(services: Services, events: list[ApprovalEvent]) -> None:
    """The lease sweep expired these requests; their updates and notices were queued with
    the expiry. Deliver them now rather than at the next poll."""
    log.info("%d approval request(s) expired", len(events))
    if services.delivery is not None:
        services.delivery.wake()


def _requester(services: Services, operation: Operation, fallback: bool) -> Callable[..., None]:
    """Answer the requester on their confirmation's response_url; with `fallback`, by a DM
    through the outbox when that URL is used up or expired (approvals can take longer than
    its 30 minutes)."""
    current = services.store.get(operation.id)
    url = current.response_url if current else None

    def send(**message: Any) -> None:
        if url:
            answer = WebhookRespond(response_url=url)(**message)
            if answer.status_code == 200:
                return
            log.info("requester's response_url answered %s", answer.status_code)
        if fallback and services.outbox is not None:
            content = {k: message[k] for k in ("text", "blocks") if k in message}
            services.outbox.add(
                [
                    owing.message(
                        "dm",
                        blocks.Message(**content),
                        channel=operation.user_id,
                        operation_id=operation.id,
                    )
                ]
            )

    return send
