"""Work behind the modal: open it, plan a submitted form, confirm or cancel its preview."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.core.operation import State
from bot.core.outcomes import NeedsPick, Planned, Refused, Requester
from bot.core.parsing import find_asset_ids
from bot.slack import blocks
from bot.slack.approvals.blocks import needs_approval
from bot.slack.command import jobs
from bot.slack.modal import views
from bot.slack.wiring import Services
from bot.uplynk.errors import UplynkError

log = logging.getLogger(__name__)

#: Seconds between the "Checking…" answer and the views.update that replaces it.
UPDATE_AFTER = 0.5


class Handoff:
    """Gives a planned view to the submission's HTTP answer if it waits for it, else tells the
    job to send it with views.update (the answer has gone out with "Checking…")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._view: dict | None = None
        self._late_at: float | None = None

    def give(self, view: dict) -> bool:
        """True if the answer takes `view`; False if the job must update the view itself."""
        with self._lock:
            late_at = self._late_at
            if late_at is None:
                self._view = view
        if late_at is None:
            self._ready.set()
            return True
        # Slack applies the "Checking…" answer when our HTTP response reaches it: an update
        # sent in the same instant could land first and be overwritten by it.
        time.sleep(max(0.0, late_at + UPDATE_AFTER - time.monotonic()))
        return False

    def take(self, timeout: float) -> dict | None:
        """The view if it is ready within `timeout` seconds; None (and the job updates) if not."""
        self._ready.wait(timeout)
        with self._lock:
            if self._view is None:
                self._late_at = time.monotonic()
            return self._view


def open_form(
    services: Services, trigger_id: str, who: Requester, message_text: str | None
) -> None:
    """views.open first (the trigger id lasts 3 s); the type-ahead list is fetched after it."""
    draft = None
    try:
        ids, duplicates = find_asset_ids(message_text) if message_text is not None else ((), ())
        draft = services.workflow.draft(who, ids)
        view = views.form(draft, len(ids), len(duplicates), message_text is not None)
        services.client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        if draft is not None:  # no modal shows it: nobody can submit or close it
            services.workflow.cancel(draft.id, who.user_id)
    except Exception:
        log.exception("could not open the modal")
    if services.directory is not None:
        services.directory.warm()


def plan(
    services: Services,
    handoff: Handoff,
    view_id: str,
    draft_id: str,
    user_id: str,
    library_id: str,
    channel_id: str,
    more_ids: tuple[str, ...],
    duplicates: tuple[str, ...],
    run_at: datetime | None = None,
) -> None:
    """Plan the submitted form, then hand the preview to the answer or update the view."""
    try:
        result = services.workflow.plan_draft(
            draft_id, user_id, library_id, channel_id, more_ids, run_at=run_at
        )
        view = _planned_view(services, draft_id, result, duplicates)
    except UplynkError as exc:
        view = views.problem(draft_id, blocks.escape(exc.user_message))
    except Exception:
        log.exception("planning the modal's operation %s failed", draft_id)
        view = views.problem(draft_id, "Something went wrong on my side; see the logs.")
    if handoff.give(view):
        return
    try:
        services.client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:  # closed meanwhile: view_closed has cancelled the operation
        log.info("views.update of %s failed: %s", view_id, exc.response.get("error"))


def _planned_view(
    services: Services,
    draft_id: str,
    result: Planned | NeedsPick | Refused,
    duplicates: tuple[str, ...],
) -> dict:
    if isinstance(result, Planned):
        approval = needs_approval(result.approval) if result.approval else None
        return views.preview(
            result.operation, result.library.desc, result.titles, duplicates, approval
        )
    operation = services.store.get(draft_id)
    if (
        operation is not None
        and operation.library_id
        and operation.state in (State.PENDING, State.DONE)
    ):
        # A second submission of one form (a double click): show the first one's preview.
        view = services.workflow.approval_needed(operation)
        approval = needs_approval(view) if view else None
        return views.preview(operation, operation.library_name or "", {}, duplicates, approval)
    message = result.message if isinstance(result, Refused) else "Pick a library from the list."
    return views.problem(draft_id, message)


class EphemeralRespond:
    """A `respond` for jobs.confirm when there is no response_url: the requester's messages go
    with chat.postEphemeral in the operation's channel (a DM if there is none)."""

    def __init__(self, services: Services, channel_id: str | None, user_id: str) -> None:
        self.client = services.client
        self.channel_id = channel_id
        self.user_id = user_id

    def __call__(self, text: str = "", blocks: list | None = None, **_ignored: Any) -> None:
        message: dict[str, Any] = {"text": text, "blocks": blocks or []}
        try:
            if self.channel_id:
                self.client.chat_postEphemeral(
                    channel=self.channel_id, user=self.user_id, **message
                )
            else:
                self.client.chat_postMessage(channel=self.user_id, **message)
        except SlackApiError as exc:
            log.warning("could not tell %s: %s", self.user_id, exc.response.get("error"))


def confirm(services: Services, operation_id: str, user_id: str) -> None:
    """The preview's submit: the command's confirm (approvals, execution, summary, report)."""
    operation = services.store.get(operation_id) if operation_id else None
    respond = EphemeralRespond(services, operation.channel_id if operation else None, user_id)
    jobs.confirm(services, respond, operation_id, user_id)


def close(services: Services, operation_id: str, user_id: str) -> None:
    """The modal was closed: cancel its operation (a finished or foreign one stays as it is)."""
    if not operation_id:
        return
    result = services.workflow.cancel(operation_id, user_id)
    if isinstance(result, Refused):
        log.info("closing the modal of %s cancelled nothing: %s", operation_id, result.message)
