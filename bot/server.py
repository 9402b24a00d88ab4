"""Start the bot for real Slack traffic: over HTTP or through Socket Mode."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from typing import Any

from slack_bolt import App

from bot.config import Settings
from bot.core.heartbeat import Heartbeat
from bot.core.schedule.runner import ScheduleRunner
from bot.core.store import OperationStore
from bot.redaction import configure_logging
from bot.slack import payload_shapes
from bot.slack.app import build_app
from bot.slack.approvals.jobs import report_expired
from bot.slack.command.jobs import report_interrupted
from bot.slack.schedule.jobs import run_due
from bot.slack.wiring import Services, build_services

log = logging.getLogger(__name__)


def start_app(settings: Settings) -> tuple[App, Services]:
    """Services, crash recovery, and the Bolt app: what every server mode shares."""
    configure_logging(settings)
    services = build_services(settings)
    start_heartbeat(services)
    start_delivery(services)
    start_schedule(services)
    return build_app(services), services


def start_schedule(services: Services) -> None:
    """Start scheduled adds at their time (docs/SPEC.md §15); the first look is at once, so a
    time missed while no instance ran is handled at start-up."""
    services.scheduler = ScheduleRunner(
        services.workflow,
        services.settings.schedule_poll,
        on_due=lambda operations: run_due(services, operations),
    ).start()


def start_delivery(services: Services) -> None:
    """Deliver what the outbox holds, this process's and any stopped one's (docs/SPEC.md §12)."""
    if services.delivery is not None:
        services.delivery.start()


def start_heartbeat(services: Services, *, sweep_now: bool = False) -> None:
    """Keep this process's operations alive and report abandoned ones (docs/SPEC.md §5)."""
    services.heartbeat = Heartbeat(
        services.workflow,
        services.settings.lease_seconds,
        # Off the heartbeat thread: slow Slack calls must never delay lease renewals.
        on_interrupted=lambda operations: services.submit(report_interrupted, operations),
        on_expired=lambda events: services.submit(report_expired, events),
        after_sweep=services.steps.sweep if services.steps is not None else None,
    ).start(sweep_now=sweep_now)


def start_http(settings: Settings, port: int, sockets: list[socket.socket] | None = None) -> None:
    """Serve Slack's HTTP endpoint in this process until SIGTERM (``serve``, each ``web`` child)."""
    from bot.web import make_wsgi_app, serve

    app, services = start_app(settings)
    log.info("addtolib listening on :%d (POST /slack/events, GET /healthz)", port)
    try:
        serve(
            make_wsgi_app(app, ready=services.not_ready),
            port=port,
            sockets=sockets,
            threads=settings.web_threads,
            request_timeout=settings.request_timeout,
            before_stop=lambda: services.drain(settings.grace_seconds),
        )
    finally:
        services.close()


def start_web(settings: Settings) -> int:
    """The Procfile's web process: ``settings.web_concurrency`` processes sharing the port."""
    from bot import web_processes

    # Before forking: the children must not race each other through the migrations.
    store = OperationStore(settings.database_url)
    try:
        store.create_schema()
    finally:
        store.dispose()
    return web_processes.run(
        settings, lambda sockets: start_http(settings, settings.port, sockets=sockets)
    )


def stop_work_on_sigterm(services: Services) -> None:
    """Under another WSGI server (gunicorn bot.wsgi:app): on SIGTERM stop taking work, then let
    the server's own handler run.

    gunicorn stops accepting and waits `graceful_timeout` for requests; the process then
    exits once the jobs in flight (each stopping after its current batch) have returned.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        services.stop_taking_work()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def start_socket_mode(settings: Settings) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    class ShapeCheckedSocketModeHandler(SocketModeHandler):
        """Bolt's handler, refusing an envelope whose payload Bolt raises on while reading it.

        Left alone, slack_sdk's client logs the exception with its traceback and carries on.
        Like any refusal over Socket Mode (Bolt's send_response for a status other than 200)
        the envelope is not acknowledged.
        """

        def handle(self, client: Any, req: Any) -> None:
            try:
                super().handle(client, req)
            except payload_shapes.BOLT_SHAPE_ERRORS as error:
                payload_shapes.unreadable(error)

    app, services = start_app(settings)
    try:
        ShapeCheckedSocketModeHandler(app, settings.slack_app_token).start()
    finally:
        services.close()
