"""Scheduled adds whose time came: run each on the work pool; the outbox reports them."""

from __future__ import annotations

import logging

from bot.core.operation import Operation
from bot.core.outcomes import Refused
from bot.slack.wiring import Services

log = logging.getLogger(__name__)


def run_due(services: Services, operations: list[Operation]) -> None:
    """Called by the schedule loop with the operations it claimed: never blocks it."""
    for operation in operations:
        services.submit(run_scheduled, operation)


def run_scheduled(services: Services, operation: Operation) -> None:
    """Run one claimed add. Its summary, thread replies (or the requester's notice, when
    permission was withdrawn) were queued with its outcome; deliver them now."""
    try:
        result = services.workflow.run_scheduled(operation)
        if isinstance(result, Refused):
            log.info("scheduled operation %s refused: %s", operation.id, result.message)
        else:
            log.info("scheduled operation %s ran: %s", operation.id, result.operation.state)
    except Exception:
        log.exception("scheduled operation %s failed to run", operation.id)
    if services.delivery is not None:
        services.delivery.wake()
