"""Bolt's custom-step listener: `app.function` acknowledges; a job does the rest."""

from __future__ import annotations

from slack_bolt import BoltContext

from bot.slack.workflow_step import jobs


def on_function_executed(event: dict, body: dict, context: BoltContext) -> None:
    """Bolt acknowledged already (auto_acknowledge): plan on the work pool. Completion is owed
    through the outbox when the operation ends (bot.core.steps), not by Bolt's `complete`."""
    execution_id = context.function_execution_id
    if not execution_id:
        return
    context["services"].submit(
        jobs.started,
        execution_id,
        event.get("inputs") or {},
        context.function_bot_access_token,
        body.get("team_id") or context.team_id or "",
    )
