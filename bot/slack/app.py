"""Build the Bolt app: one place where every listener is registered."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse, Respond

from bot.core.steps import CALLBACK_ID as STEP
from bot.slack import blocks, payload_shapes
from bot.slack.approvals import blocks as approval_blocks
from bot.slack.approvals import listeners as approval_listeners
from bot.slack.command import listeners
from bot.slack.home import blocks as home_blocks
from bot.slack.home import listeners as home_listeners
from bot.slack.modal import listeners as modal_listeners
from bot.slack.modal import views
from bot.slack.wiring import Services
from bot.slack.workflow_step import listeners as step_listeners


def build_app(services: Services) -> App:
    """A Bolt app whose listeners reach the shared services through the context."""
    settings = services.settings
    app = App(
        signing_secret=settings.slack_signing_secret,
        client=services.client,
        # Start-up must not depend on reaching Slack; a bad token shows on the first call.
        token_verification_enabled=False,
        # Listeners only acknowledge and hand work to the services' pool, so they run on the
        # request thread; otherwise Bolt hands each to its executor and polls for the ack every
        # 10 ms (10-15 ms on every acknowledgement, benchmarks/ack_latency.py). The console
        # relies on it too: when dispatch returns, the job has been queued.
        process_before_response=True,
    )

    # First of ours: the function middleware below would already raise on a malformed payload.
    app.use(payload_shapes.ShapeCheck())

    @app.middleware
    def ignore_slack_retries(
        request: BoltRequest, next: Callable[[], BoltResponse | None]
    ) -> BoltResponse | None:
        # Slack resends a request (X-Slack-Retry-Num) when our ack seemed slow or lost. Our acks
        # are immediate and the original is already being handled, so acting again would plan
        # a second operation or answer a click twice: acknowledge the retry and do nothing.
        # Bolt's signature check runs before this middleware, so a forged retry still gets 401.
        # Events are the exception: a retry after a failed first delivery is the only copy, so
        # they are handled once per event_id instead (once_per_event, docs/SPEC.md §14).
        if is_event(request.body):
            return next()
        if is_retry(request.headers.get("x-slack-retry-num")):
            return BoltResponse(status=200, body="")
        return next()

    @app.middleware
    def refuse_while_stopping(
        request: BoltRequest, respond: Respond | None, next: Callable[[], BoltResponse | None]
    ) -> BoltResponse | None:
        # SIGTERM: answer 200 with a clear message rather than 503 (Slack does not retry slash
        # commands or clicks; a 503 shows the user only "dispatch_failed").
        if not services.draining.is_set():
            return next()
        if is_event(request.body):  # not handled here: Slack retries it, another instance takes it
            return BoltResponse(status=503, body="")
        if respond is not None and request.body.get("type") == "block_actions":
            services.pool.submit(respond, text=blocks.RESTARTING, replace_original=False)
        if request.body.get("type") in views.INTERACTIONS:
            answer = views.while_stopping(request.body, blocks.RESTARTING)
            return BoltResponse(
                status=200, body=json.dumps(answer), headers={"content-type": "application/json"}
            )
        return BoltResponse(
            status=200,
            body=json.dumps({"response_type": "ephemeral", "text": blocks.RESTARTING}),
            headers={"content-type": "application/json"},
        )

    @app.middleware
    def once_per_event(
        request: BoltRequest, next: Callable[[], BoltResponse | None]
    ) -> BoltResponse | None:
        # The event id's row is the compare-and-set: the first delivery of an event to reach any
        # instance is handled, a second (Slack's retry of one it thinks lost) is acknowledged.
        event_id = request.body.get("event_id") if is_event(request.body) else None
        seen = services.seen_events
        if not isinstance(event_id, str) or not event_id or seen is None:
            return next()
        if not seen.first(event_id):
            return BoltResponse(status=200, body="")
        try:
            response = next()
        except Exception:
            seen.forget(event_id)  # nothing was done: let Slack's retry be handled
            raise
        if response is not None and response.status >= 500:
            seen.forget(event_id)
        return response

    @app.middleware
    def provide_services(context: BoltContext, next: Callable[[], object]) -> None:
        context["services"] = services
        next()

    app.command("/addtolib")(listeners.on_command)
    app.action(blocks.CONFIRM)(listeners.on_confirm)
    app.action(blocks.CANCEL)(listeners.on_cancel)
    app.action(blocks.UNDO)(listeners.on_undo)
    app.action(blocks.RETRY)(listeners.on_retry)
    app.action(blocks.PICK_LIBRARY)(listeners.on_pick_library)
    app.action(approval_blocks.APPROVE)(approval_listeners.on_approve)
    app.action(approval_blocks.DENY)(approval_listeners.on_deny)
    app.shortcut(views.SHORTCUT)(modal_listeners.on_shortcut)
    app.shortcut(views.MESSAGE_SHORTCUT)(modal_listeners.on_message_shortcut)
    app.options(views.LIBRARY)(modal_listeners.on_library_options)
    app.view_submission(views.FORM)(modal_listeners.on_form_submitted)
    app.view_submission(views.PREVIEW)(modal_listeners.on_preview_submitted)
    app.view_closed(views.FORM)(modal_listeners.on_closed)
    app.view_closed(views.PREVIEW)(modal_listeners.on_closed)
    app.event("app_home_opened")(home_listeners.on_home_opened)
    app.action(home_blocks.ADD)(home_listeners.on_add)
    app.function(STEP)(step_listeners.on_function_executed)  # acknowledges by itself
    return app


def is_event(body: dict[str, Any]) -> bool:
    """An Events API delivery (over HTTP or a Socket Mode `events_api` envelope)."""
    return body.get("type") == "event_callback"


def is_retry(values: Sequence[str] | str | None) -> bool:
    """Whether X-Slack-Retry-Num marks a redelivery: Socket Mode sends "0" on a first delivery."""
    value = values[0] if isinstance(values, list | tuple) and values else values
    try:
        return int(value) > 0 if isinstance(value, str) else False
    except ValueError:
        return True  # unreadable, but present only on retries over HTTP: treat it as one
