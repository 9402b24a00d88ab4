"""The step's work after Slack's acknowledgement: the command's path, answered by DM."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.core.outcomes import NeedsPick, Refused, Requester
from bot.core.parsing import ParseError
from bot.core.steps import requester_of, step_command
from bot.slack import blocks
from bot.slack.delivery.owing import message
from bot.slack.wiring import Services
from bot.uplynk.errors import UplynkError

log = logging.getLogger(__name__)

NO_REQUESTER = (
    "The step's `requester` input is not a Slack user: set it to the person who asked "
    "(e.g. the form's submitter)."
)


def started(
    services: Services,
    execution_id: str,
    inputs: Mapping[str, Any],
    token: str | None,
    team_id: str,
) -> None:
    """function_executed: one operation per execution (the step's row is the compare-and-set),
    planned as the command would be; the preview goes to the requester by DM."""
    steps = services.steps
    if steps is None:
        return
    requester = requester_of(inputs)
    if not steps.start(execution_id, requester or "?", inputs, token):
        log.info("workflow step %s delivered again; already handled", execution_id)
        return
    if requester is None:
        steps.finish(execution_id, reason=NO_REQUESTER)
        return
    try:
        _plan(services, execution_id, inputs, requester, team_id)
    except Exception as exc:
        log.exception("workflow step %s failed", execution_id)
        text = (
            blocks.escape(exc.user_message)
            if isinstance(exc, UplynkError)
            else "Something went wrong on my side; see the logs."
        )
        _refuse(services, execution_id, requester, text)


def _plan(
    services: Services,
    execution_id: str,
    inputs: Mapping[str, Any],
    requester: str,
    team_id: str,
) -> None:
    steps = services.steps
    assert steps is not None
    try:
        command = step_command(inputs, services.settings.max_assets)
    except ParseError as exc:
        _refuse(services, execution_id, requester, exc.message)
        return
    channel = inputs.get("channel")
    # No channel given: the summary goes to the requester's DM with the bot.
    where = channel if isinstance(channel, str) and channel else requester
    result = services.workflow.plan(Requester(requester, team_id, where), command)
    operation = result.operation
    if operation is not None:
        steps.link(execution_id, operation.id)
    if isinstance(result, Refused):
        # A refusal recorded as an operation (denied) completes with it; others right here.
        _refuse(services, execution_id, requester, result.message)
        return
    if isinstance(result, NeedsPick):
        said = blocks.pick_library(result.operation, result.name, result.candidates)
    else:
        said = blocks.preview(result.operation, result.library, command.duplicates)
    _dm(services, requester, said, result.operation.id)
    fresh = services.store.get(result.operation.id)
    if fresh is not None:  # nothing new to add: it ended `done` before the step knew it
        steps.settle(fresh)


def _refuse(services: Services, execution_id: str, requester: str, text: str) -> None:
    """The requester hears what the command would say; the step ends with the same reason."""
    _dm(services, requester, blocks.error(text), None)
    assert services.steps is not None
    services.steps.finish(execution_id, reason=text)


def _dm(services: Services, user_id: str, said: blocks.Message, operation_id: str | None) -> None:
    if services.outbox is not None:
        services.outbox.add([message("dm", said, channel=user_id, operation_id=operation_id)])
