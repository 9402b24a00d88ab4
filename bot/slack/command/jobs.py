"""Work done after Slack's acknowledgement: call the workflow, answer with blocks."""

from __future__ import annotations

import logging

from bot.core.approvals.outcomes import AwaitingApproval
from bot.core.operation import Operation, State
from bot.core.outcomes import Executed, NeedsPick, Planned, Refused, Requester
from bot.core.parsing import USAGE, AddCommand, HistoryCommand
from bot.slack import blocks, replies
from bot.slack.approvals import blocks as approval_blocks
from bot.slack.approvals import jobs as approval_jobs
from bot.slack.delivery.owing import summarized
from bot.slack.wiring import Services
from bot.uplynk.errors import UplynkError

log = logging.getLogger(__name__)

SUPERSEDED_TEXT = (
    "This run was presumed stopped and another run took the operation over; "
    "that run reports the outcome."
)


@replies.safely
def send_help(services: Services, respond: replies.Respond, user_id: str, channel_id: str) -> None:
    allowed = services.policy.allowed_libraries(user_id, channel_id, services.groups_of)
    libraries, unknown = [], []
    if allowed != "*":
        for library_id in sorted(allowed):
            try:
                libraries.append(services.uplynk.get_library(library_id))
            except UplynkError as exc:
                log.info("help: library %s not shown: %s", library_id, exc)
                unknown.append(library_id)
    replies.ephemeral(respond, blocks.help_message(USAGE, libraries, allowed == "*", unknown))


@replies.safely
def send_history(
    services: Services, respond: replies.Respond, user_id: str, command: HistoryCommand
) -> None:
    operations = services.workflow.history(user_id, command.library)
    links = services.notifier.permalinks(operations)
    everyone = services.policy.is_admin(user_id)
    approvers = services.workflow.approvals.approvers_of(operations)
    queued = services.outbox.queued_for(op.id for op in operations) if services.outbox else set()
    replies.ephemeral(respond, blocks.history(operations, links, everyone, approvers, queued))


@replies.safely
def plan(
    services: Services,
    respond: replies.Respond,
    who: Requester,
    command: AddCommand,
    url: str | None,
) -> None:
    result = services.workflow.plan(who, command, url)
    _answer_plan(respond, result, command.duplicates)


@replies.safely
def pick_library(services: Services, respond: replies.Respond, value: str, user_id: str) -> None:
    operation_id, _, library_id = value.partition(":")
    result = services.workflow.pick_library(operation_id, library_id, user_id)
    _answer_plan(respond, result, (), replace=True)


def _answer_plan(
    respond: replies.Respond,
    result: Planned | NeedsPick | Refused,
    duplicates: tuple[str, ...],
    replace: bool = False,
) -> None:
    if isinstance(result, Refused):
        replies.ephemeral(respond, blocks.error(result.message), replace)
    elif isinstance(result, NeedsPick):
        replies.ephemeral(
            respond, blocks.pick_library(result.operation, result.name, result.candidates)
        )
    elif isinstance(result, Planned):
        approval = approval_blocks.needs_approval(result.approval) if result.approval else None
        replies.ephemeral(
            respond,
            blocks.preview(result.operation, result.library, duplicates, approval),
            replace,
        )


@replies.safely
def cancel(services: Services, respond: replies.Respond, operation_id: str, user_id: str) -> None:
    result = services.workflow.cancel(operation_id, user_id)
    if isinstance(result, Refused):
        replies.ephemeral(respond, blocks.error(result.message))
    else:
        # A withdrawn approval request's updates were queued with the cancellation.
        replies.ephemeral(respond, blocks.cancelled(result), replace=True)


@replies.safely
def confirm(services: Services, respond: replies.Respond, operation_id: str, user_id: str) -> None:
    confirmed = services.workflow.confirm(operation_id, user_id)
    if isinstance(confirmed, Refused):
        replies.ephemeral(respond, blocks.error(confirmed.message))
        return
    response_url = getattr(respond, "response_url", None)
    if response_url:
        # The summary's way into a channel the bot is not in (docs/SPEC.md §12), kept with the row
        # so that whichever instance delivers the summary can use it.
        services.store.update(operation_id, response_url=response_url)
    if isinstance(confirmed, AwaitingApproval):
        approval_jobs.request_approval(services, respond, confirmed)
        return
    if confirmed.state == State.SCHEDULED:  # docs/SPEC.md §15: runs at its time
        replies.ephemeral(respond, blocks.scheduled(confirmed), replace=True)
        return
    name = confirmed.library_name or confirmed.library_id
    progress = replies.ProgressLine(respond, name, services.settings.uplynk_batch_size)
    executed = services.workflow.execute(confirmed, progress)
    if executed.superseded:
        replies.ephemeral(respond, blocks.info(SUPERSEDED_TEXT))
        return
    if _stopped_for_restart(respond, executed):
        return
    replies.report(respond, executed)


@replies.safely
def retry(services: Services, respond: replies.Respond, operation_id: str, user_id: str) -> None:
    operation = services.workflow.store.get(operation_id) if operation_id else None
    name = operation.library_name if operation else ""
    # The Retry button sits on a shared message: progress goes to the clicker only.
    progress = replies.ProgressLine(
        respond, name, services.settings.uplynk_batch_size, replace=False
    )
    executed = services.workflow.retry(operation_id, user_id, progress)
    if isinstance(executed, Refused):
        replies.ephemeral(respond, blocks.error(executed.message))
        return
    if executed.superseded:
        replies.ephemeral(respond, blocks.info(SUPERSEDED_TEXT))
        return
    if _stopped_for_restart(respond, executed, replace=False):
        return
    if operation is not None and operation.state == State.INTERRUPTED and not summarized(operation):
        # Cut off by a crash, it was never reported: the outcome replaces the clicked DM; the
        # summary and the thread's events were queued with the outcome (bot.slack.delivery.owing).
        replies.ephemeral(respond, blocks.outcome(executed.operation), replace=True)
        return
    summary = blocks.summary(
        executed.operation, executed.library, _approvers(services, executed.operation)
    )
    respond(replace_original=True, **summary.kwargs())


@replies.safely
def undo(services: Services, respond: replies.Respond, operation_id: str, user_id: str) -> None:
    result = services.workflow.undo(operation_id, user_id)
    if isinstance(result, Refused):
        replies.ephemeral(respond, blocks.error(result.message))
        return
    operation = result.operation
    summary = blocks.summary(operation, result.library, _approvers(services, operation))
    respond(replace_original=True, **summary.kwargs())


def _stopped_for_restart(
    respond: replies.Respond, executed: Executed, replace: bool = True
) -> bool:
    """A shutdown stopped the run between batches: say so (the next instance takes over)."""
    if executed.operation.state != State.RUNNING:
        return False
    replies.ephemeral(respond, blocks.restarting(executed.operation), replace=replace)
    return True


def _approvers(services: Services, operation: Operation) -> list[str]:
    """Who approved the operation (docs/SPEC.md §7), for its summary."""
    return services.workflow.approvals.approvers_of([operation]).get(operation.id, [])


def report_interrupted(services: Services, operations: list[Operation]) -> None:
    """Resume each operation a restart cut off, with nobody clicking (docs/SPEC.md §10).

    The sweep that found them queued the thread's event in the same transaction; the resumed
    run queues its outcome (DM, thread, and the summary if none was posted). Runs on the
    work pool, never on the heartbeat thread: a failure is logged here.
    """
    try:
        _resume_interrupted(services, operations)
    except Exception:
        log.exception("could not resume %d interrupted operation(s)", len(operations))
    if services.delivery is not None:
        services.delivery.wake()


def _resume_interrupted(services: Services, operations: list[Operation]) -> None:
    for operation in operations:
        if operation.state != State.INTERRUPTED:
            # An undo taken back: its requester was told (outbox); Undo removes the rest.
            log.warning("undo of operation %s was interrupted", operation.id)
            continue
        log.warning("operation %s was interrupted; resuming it", operation.id)
        resumed = services.workflow.resume(operation.id)
        if isinstance(resumed, Refused):
            log.info("operation %s not resumed here: %s", operation.id, resumed.message)
        else:
            log.info("operation %s resumed: %s", operation.id, resumed.operation.state)
