"""Bolt listeners: acknowledge at once, hand the network work to a job on the work pool."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, BoltContext, Respond

from bot.core.outcomes import Requester
from bot.core.parsing import AddCommand, HelpCommand, ParseError, parse_command
from bot.slack import blocks
from bot.slack.command import jobs
from bot.slack.home import jobs as home_jobs


def on_command(ack: Ack, command: dict, respond: Respond, context: BoltContext) -> None:
    services = context["services"]
    try:
        parsed = parse_command(command.get("text") or "", services.settings.max_assets)
    except ParseError as exc:
        ack(response_type="ephemeral", **blocks.error(exc.message).kwargs())
        return
    user_id, channel_id = command["user_id"], command["channel_id"]
    if isinstance(parsed, HelpCommand):
        ack()
        services.submit(jobs.send_help, respond, user_id, channel_id)
    elif isinstance(parsed, AddCommand):
        where = blocks.name(parsed.library.name or parsed.library.id)
        count = blocks.plural(len(parsed.asset_ids), "asset")
        ack(response_type="ephemeral", **blocks.working(f"Checking {count} for {where}…").kwargs())
        who = Requester(user_id, command["team_id"], channel_id)
        services.submit(jobs.plan, respond, who, parsed, command.get("response_url"))
    else:
        ack()
        services.submit(jobs.send_history, respond, user_id, parsed)


def button(job: Callable[..., None]) -> Callable[..., None]:
    """A listener for a button whose value names an operation."""

    def listener(
        ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext
    ) -> None:
        ack()
        services, user_id = context["services"], body["user"]["id"]
        value = action.get("value") or ""
        if home_jobs.is_home_click(body):  # the same decision, answered on the Home
            services.submit(home_jobs.clicked, job, value, user_id)
            return
        services.submit(job, respond, value, user_id)

    listener.__name__ = f"on_{job.__name__}"
    return listener


on_confirm = button(jobs.confirm)
on_cancel = button(jobs.cancel)
on_undo = button(jobs.undo)
on_retry = button(jobs.retry)
on_pick_library = button(jobs.pick_library)
