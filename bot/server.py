"""Start the bot for real Slack traffic: over HTTP or through Socket Mode."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from slack_bolt import App

from bot.config import Settings
from bot.core.heartbeat import Heartbeat
from bot.redaction import configure_logging
from bot.slack.app import build_app
from bot.slack.approval_jobs import report_expired
from bot.slack.jobs import report_interrupted
from bot.slack.services import Services, build_services

log = logging.getLogger(__name__)


def start_app(settings: Settings) -> tuple[App, Services]:
    """Services, crash recovery, and the Bolt app: what every server mode shares."""
    configure_logging(settings)
    services = build_services(settings)
    start_heartbeat(services)
    start_delivery(services)
    return build_app(services), services


def start_delivery(services: Services) -> None:
    """Deliver what the outbox holds, this process's and any stopped instance's (SPEC 12)."""
    if services.delivery is not None:
        services.delivery.start()


def start_heartbeat(services: Services, *, sweep_now: bool = False) -> None:
    """Keep this process's operations alive and report abandoned ones (SPEC 5, recovery)."""
    services.heartbeat = Heartbeat(
        services.workflow,
        services.settings.lease_seconds,
        # Off the heartbeat thread: slow Slack calls must never delay lease renewals.
        on_interrupted=lambda operations: services.submit(report_interrupted, operations),
        on_expired=lambda events: services.submit(report_expired, events),
    ).start(sweep_now=sweep_now)


def start_http(settings: Settings, port: int) -> None:
    from bot.web import make_wsgi_app, serve

    app, services = start_app(settings)
    log.info("addtolib listening on :%d (POST /slack/events, GET /healthz)", port)
    try:
        serve(
            make_wsgi_app(app, ready=services.not_ready),
            port=port,
            before_stop=lambda: services.drain(settings.grace_seconds),
            request_timeout=settings.request_timeout,
        )
    finally:
        services.close()


def stop_work_on_sigterm(services: Services) -> None:
    """Under gunicorn: on SIGTERM stop taking work, then let gunicorn's own handler run.

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

    app, services = start_app(settings)
    try:
        SocketModeHandler(app, settings.slack_app_token).start()
    finally:
        services.close()
