"""Bolt listeners of the App Home: its opening, and its own `Add assets` button."""

from __future__ import annotations

from slack_bolt import Ack, BoltContext

from bot.core.outcomes import Requester
from bot.slack.home import jobs
from bot.slack.modal import jobs as modal_jobs


def on_home_opened(event: dict, context: BoltContext) -> None:
    """app_home_opened fires for the Messages tab too; only the Home tab is ours to draw."""
    user_id = event.get("user")
    if event.get("tab", "home") != "home" or not isinstance(user_id, str) or not user_id:
        return
    context["services"].submit(jobs.opened, user_id)


def on_add(ack: Ack, body: dict, context: BoltContext) -> None:
    """`Add assets` opens the shortcut's modal (docs/SPEC.md §8) with the click's trigger id."""
    ack()
    user = body["user"]
    who = Requester(user["id"], (body.get("team") or {}).get("id") or user.get("team_id", ""), "")
    context["services"].submit_ui(modal_jobs.open_form, body["trigger_id"], who, None)
