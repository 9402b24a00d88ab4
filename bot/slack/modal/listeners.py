"""Bolt listeners for the shortcuts and the modal: acknowledge, then hand work to modal_jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from slack_bolt import Ack, BoltContext

from bot.core.outcomes import Requester
from bot.core.parsing import ParseError, parse_asset_list
from bot.core.schedule.when import check_window
from bot.slack.modal import jobs as modal_jobs
from bot.slack.modal import views

#: Slack waits 3 s for a view_submission's answer; past this the preview comes by views.update.
PREVIEW_WAIT = 2.0


def on_shortcut(ack: Ack, body: dict, context: BoltContext) -> None:
    ack()
    who = Requester(body["user"]["id"], _team(body), "")
    context["services"].submit_ui(modal_jobs.open_form, body["trigger_id"], who, None)


def on_message_shortcut(ack: Ack, body: dict, context: BoltContext) -> None:
    ack()
    who = Requester(body["user"]["id"], _team(body), (body.get("channel") or {}).get("id", ""))
    text = (body.get("message") or {}).get("text") or ""
    context["services"].submit_ui(modal_jobs.open_form, body["trigger_id"], who, text)


def on_library_options(ack: Ack, body: dict, payload: dict, context: BoltContext) -> None:
    services = context["services"]
    user_id = body["user"]["id"]
    # An options request names no channel: offer what the user may add to from some channel;
    # the submission checks the chosen one.
    allowed = services.policy.allowed_libraries(user_id, None, services.groups_of, any_channel=True)
    found = services.directory.search(payload.get("value") or "", allowed) if allowed else []
    ack(options=views.options(found))


def on_form_submitted(ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
    services = context["services"]
    values = view.get("state", {}).get("values", {})
    library = (_value(values, views.LIBRARY).get("selected_option") or {}).get("value")
    text = _value(values, views.ASSETS).get("value") or ""
    channel = _value(values, views.CHANNEL).get("selected_conversation")
    draft_id, user_id = views.draft_id(view), body["user"]["id"]
    draft = services.store.get(draft_id) if draft_id else None
    errors = {}
    if draft is None or draft.user_id != user_id:
        errors[views.LIBRARY] = "This form is no longer known; close it and open it again."
    elif not library:
        errors[views.LIBRARY] = "Pick a library from the list."
    found = draft.requested_ids if draft is not None else []
    try:
        more, duplicates = parse_asset_list(text, services.settings.max_assets, found)
    except ParseError as exc:
        errors[views.ASSETS] = exc.message
    if not channel:
        errors[views.CHANNEL] = "Pick the conversation where the summary goes."
    run_at = _when(values, services.settings.schedule_horizon, errors)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    handoff = modal_jobs.Handoff()
    args = (view["id"], draft_id, user_id, library, channel, more, duplicates, run_at)
    services.submit(modal_jobs.plan, handoff, *args)
    planned = handoff.take(PREVIEW_WAIT)
    if planned is None:
        planned = views.checking(draft_id, "", len(found) + len(more))
    ack(response_action="update", view=planned)


def on_preview_submitted(ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
    ack(response_action="clear")
    operation_id = view.get("private_metadata") or ""
    context["services"].submit(modal_jobs.confirm, operation_id, body["user"]["id"])


def on_closed(ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
    ack()
    operation_id = views.draft_id(view) if view.get("callback_id") == views.FORM else None
    operation_id = operation_id if operation_id is not None else view.get("private_metadata")
    context["services"].submit(modal_jobs.close, operation_id or "", body["user"]["id"])


def _when(values: dict, horizon: int, errors: dict) -> datetime | None:
    """The `when` block's time (docs/SPEC.md §15), or None; a refused one goes in errors."""
    chosen = _value(values, views.WHEN).get("selected_date_time")
    if chosen is None:
        return None
    try:
        run_at = datetime.fromtimestamp(int(chosen), UTC)
    except (TypeError, ValueError, OverflowError):
        errors[views.WHEN] = "Pick a date and a time."
        return None
    reason = check_window(run_at, datetime.now(UTC), horizon)
    if reason:
        errors[views.WHEN] = reason
    return run_at


def _value(values: dict, block_id: str) -> dict:
    return (values.get(block_id) or {}).get(block_id) or {}


def _team(body: dict) -> str:
    return (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
