"""Work done after Slack's acknowledgement: call the workflow, answer with blocks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.core.approvals.outcomes import AwaitingApproval
from bot.core.operation import Operation
from bot.core.outcomes import Executed, NeedsPick, Planned, Refused, Requester
from bot.core.parsing import USAGE, AddCommand, HistoryCommand
from bot.slack import blocks
from bot.slack.services import Services
from bot.uplynk.errors import UplynkError

log = logging.getLogger(__name__)

Respond = Callable[..., object]

SUPERSEDED_TEXT = (
    "This run was presumed stopped and another run took the operation over; "
    "that run reports the outcome."
)

# Slack allows 5 posts per response_url: the first progress line, these marks, and the outcome
# leave one spare for a late problem report.
PROGRESS_MARKS = (1 / 3, 2 / 3)


def _ephemeral(respond: Respond, message: blocks.Message, replace: bool = False) -> None:
    respond(response_type="ephemeral", replace_original=replace, **message.kwargs())


def _safely(job: Callable[..., None]) -> Callable[..., None]:
    """Log a job's crash and tell the user, instead of failing silently in a worker thread."""

    def run(services: Services, respond: Respond, *args) -> None:
        try:
            job(services, respond, *args)
        except UplynkError as exc:
            _ephemeral(respond, blocks.error(blocks.escape(exc.user_message)))
        except Exception:
            log.exception("job %s failed", job.__name__)
            try:
                _ephemeral(respond, blocks.error("Something went wrong on my side; see the logs."))
            except Exception:
                log.exception("could not report the failure")

    run.__name__ = job.__name__
    return run


@_safely
def send_help(services: Services, respond: Respond, user_id: str, channel_id: str) -> None:
    allowed = services.policy.allowed_libraries(user_id, channel_id, services.groups_of)
    libraries, unknown = [], []
    if allowed != "*":
        for library_id in sorted(allowed):
            try:
                libraries.append(services.uplynk.get_library(library_id))
            except UplynkError as exc:
                log.info("help: library %s not shown: %s", library_id, exc)
                unknown.append(library_id)
    _ephemeral(respond, blocks.help_message(USAGE, libraries, allowed == "*", unknown))


@_safely
def send_history(
    services: Services, respond: Respond, user_id: str, command: HistoryCommand
) -> None:
    operations = services.workflow.history(user_id, command.library)
    links = services.notifier.permalinks(operations)
    everyone = services.policy.is_admin(user_id)
    approvers = services.workflow.approvals.approvers_of(operations)
    queued = services.outbox.queued_for(op.id for op in operations) if services.outbox else set()
    _ephemeral(respond, blocks.history(operations, links, everyone, approvers, queued))


@_safely
def plan(services: Services, respond: Respond, who: Requester, command: AddCommand, url) -> None:
    result = services.workflow.plan(who, command, url)
    _answer_plan(respond, result, command.duplicates)


@_safely
def pick_library(services: Services, respond: Respond, value: str, user_id: str) -> None:
    operation_id, _, library_id = value.partition(":")
    result = services.workflow.pick_library(operation_id, library_id, user_id)
    _answer_plan(respond, result, (), replace=True)


def _answer_plan(respond: Respond, result, duplicates, replace: bool = False) -> None:
    if isinstance(result, Refused):
        _ephemeral(respond, blocks.error(result.message), replace)
    elif isinstance(result, NeedsPick):
        _ephemeral(respond, blocks.pick_library(result.operation, result.name, result.candidates))
    elif isinstance(result, Planned):
        _ephemeral(respond, blocks.preview(result.operation, result.library, duplicates), replace)


@_safely
def cancel(services: Services, respond: Respond, operation_id: str, user_id: str) -> None:
    result = services.workflow.cancel(operation_id, user_id)
    if isinstance(result, Refused):
        _ephemeral(respond, blocks.error(result.message))
    else:
        # A withdrawn approval request's updates were queued with the cancellation.
        _ephemeral(respond, blocks.cancelled(result), replace=True)


@_safely
def confirm(services: Services, respond: Respond, operation_id: str, user_id: str) -> None:
    confirmed = services.workflow.confirm(operation_id, user_id)
    if isinstance(confirmed, Refused):
        _ephemeral(respond, blocks.error(confirmed.message))
        return
    if getattr(respond, "response_url", None):
        # The summary's way into a channel the bot is not in (SPEC 12), kept with the row so
        # that whichever instance delivers the summary can use it.
        services.store.update(operation_id, response_url=respond.response_url)
    if isinstance(confirmed, AwaitingApproval):
        from bot.slack import approval_jobs  # imports this module

        approval_jobs.request_approval(services, respond, confirmed)
        return
    name = confirmed.library_name or confirmed.library_id
    progress = ProgressLine(respond, name, services.settings.uplynk_batch_size)
    executed = services.workflow.execute(confirmed, progress)
    if executed.superseded:
        _ephemeral(respond, blocks.info(SUPERSEDED_TEXT))
        return
    if _stopped_for_restart(respond, executed):
        return
    _report(services, respond, executed)


@_safely
def retry(services: Services, respond: Respond, operation_id: str, user_id: str) -> None:
    operation = services.workflow.store.get(operation_id) if operation_id else None
    name = operation.library_name if operation else ""
    # The Retry button sits on a shared message: progress goes to the clicker only.
    progress = ProgressLine(respond, name, services.settings.uplynk_batch_size, replace=False)
    executed = services.workflow.retry(operation_id, user_id, progress)
    if isinstance(executed, Refused):
        _ephemeral(respond, blocks.error(executed.message))
        return
    if executed.superseded:
        _ephemeral(respond, blocks.info(SUPERSEDED_TEXT))
        return
    if _stopped_for_restart(respond, executed, replace=False):
        return
    if operation is not None and operation.state == "interrupted" and not operation.summary_ts:
        # Cut off by a crash, it was never reported: the outcome replaces the clicked DM; the
        # summary and the thread's events were queued with the outcome (bot.slack.owed).
        _ephemeral(respond, blocks.outcome(executed.operation), replace=True)
        return
    summary = blocks.summary(
        executed.operation, executed.library, _approvers(services, executed.operation)
    )
    respond(replace_original=True, **summary.kwargs())


@_safely
def undo(services: Services, respond: Respond, operation_id: str, user_id: str) -> None:
    result = services.workflow.undo(operation_id, user_id)
    if isinstance(result, Refused):
        _ephemeral(respond, blocks.error(result.message))
        return
    operation = result.operation
    summary = blocks.summary(operation, result.library, _approvers(services, operation))
    respond(replace_original=True, **summary.kwargs())


def _stopped_for_restart(respond: Respond, executed: Executed, replace: bool = True) -> bool:
    """A shutdown stopped the run between batches: say so (the next instance takes over)."""
    if executed.operation.state != "running":
        return False
    _ephemeral(respond, blocks.restarting(executed.operation), replace=replace)
    return True


def _report(services: Services, respond: Respond, executed: Executed) -> None:
    """Replace the confirmation with the outcome; the summary and the notification thread
    were queued in the outbox with the outcome itself (bot.slack.owed, bot.slack.delivery)."""
    if executed.superseded:
        # Another run took the operation over; it reports the one outcome.
        log.info("operation %s: run superseded; no outcome from it", executed.operation.id)
        return
    _ephemeral(respond, blocks.outcome(executed.operation), replace=True)


def _approvers(services: Services, operation: Operation) -> list[str]:
    """Who approved the operation (SPEC 7), for its summary."""
    return services.workflow.approvals.approvers_of([operation]).get(operation.id, [])


def report_interrupted(services: Services, operations: list[Operation]) -> None:
    """Resume each operation a restart cut off, with nobody clicking (SPEC 10).

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
        if operation.state != "interrupted":
            # An undo taken back: its requester was told (outbox); Undo removes the rest.
            log.warning("undo of operation %s was interrupted", operation.id)
            continue
        log.warning("operation %s was interrupted; resuming it", operation.id)
        resumed = services.workflow.resume(operation.id)
        if isinstance(resumed, Refused):
            log.info("operation %s not resumed here: %s", operation.id, resumed.message)
        else:
            log.info("operation %s resumed: %s", operation.id, resumed.operation.state)


class ProgressLine:
    """Replaces the confirmation with a progress bar, throttled to Slack's response_url limit."""

    def __init__(self, respond: Respond, library_name: str, batch_size: int, replace: bool = True):
        self.respond = respond
        self.library_name = library_name
        self.batch_size = batch_size
        self.replace = replace
        self.marks: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        if done == 0:
            self.marks = list(PROGRESS_MARKS) if total > self.batch_size else []
            if self.replace or self.marks:
                self._send(0, total)
            return
        with self.lock:
            if not self.marks or done >= total or done / total < self.marks[0]:
                return
            while self.marks and done / total >= self.marks[0]:
                self.marks.pop(0)
        self._send(done, total)

    def _send(self, done: int, total: int) -> None:
        message = blocks.progress(done, total, self.library_name)
        _ephemeral(self.respond, message, replace=self.replace)
