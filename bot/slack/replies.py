"""How jobs answer the user: ephemeral replies, crash reports, progress lines, the outcome."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bot.core.outcomes import Executed
from bot.slack import blocks
from bot.uplynk.errors import UplynkError

log = logging.getLogger(__name__)

Respond = Callable[..., object]


# Slack allows 5 posts per response_url: the first progress line, these marks, and the outcome
# leave one spare for a late problem report.
PROGRESS_MARKS = (1 / 3, 2 / 3)


def ephemeral(respond: Respond, message: blocks.Message, replace: bool = False) -> None:
    respond(response_type="ephemeral", replace_original=replace, **message.kwargs())


def safely(job: Callable[..., None]) -> Callable[..., None]:
    """Log a job's crash and tell the user, instead of failing silently in a worker thread."""

    def run(services: Any, respond: Respond, *args: Any) -> None:
        try:
            job(services, respond, *args)
        except UplynkError as exc:
            ephemeral(respond, blocks.error(blocks.escape(exc.user_message)))
        except Exception:
            log.exception("job %s failed", job.__name__)
            try:
                ephemeral(respond, blocks.error("Something went wrong on my side; see the logs."))
            except Exception:
                log.exception("could not report the failure")

    run.__name__ = job.__name__
    return run


def report(respond: Respond, executed: Executed) -> None:
    """Replace the confirmation with the outcome; the summary and the notification thread
    were queued in the outbox with the outcome itself (bot.slack.delivery)."""
    if executed.superseded:
        # Another run took the operation over; it reports the one outcome.
        log.info("operation %s: run superseded; no outcome from it", executed.operation.id)
        return
    ephemeral(respond, blocks.outcome(executed.operation), replace=True)


class ProgressLine:
    """Replaces the confirmation with a progress bar, throttled to Slack's response_url limit."""

    def __init__(
        self, respond: Respond, library_name: str | None, batch_size: int, replace: bool = True
    ):
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
        ephemeral(self.respond, message, replace=self.replace)
