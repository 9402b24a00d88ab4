"""Start the bot for real Slack traffic: over HTTP or through Socket Mode."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.config import Settings
from bot.core.heartbeat import Heartbeat
from bot.redaction import configure_logging
from bot.slack.app import build_app
from bot.slack.jobs import report_interrupted
from bot.slack.services import Services, build_services

log = logging.getLogger(__name__)


def start_app(settings: Settings) -> tuple[App, Services]:
    """Services, crash recovery, and the Bolt app: what every server mode shares."""
    configure_logging(settings)
    services = build_services(settings)
    services.heartbeat = Heartbeat(
        services.workflow,
        settings.lease_seconds,
        on_interrupted=lambda operations: report_interrupted(services, operations),
    ).start()
    # Listeners only ack and hand work to the services' pool, so they run on the request
    # thread: otherwise Bolt hands each one to its listener executor and polls for the ack
    # every 10 ms, which added 10-15 ms to every acknowledgement (benchmarks/ack_latency.py).
    return build_app(services, process_before_response=True), services


def start_http(settings: Settings, port: int) -> None:
    from bot.web import make_wsgi_app, serve

    app, services = start_app(settings)
    log.info("addtolib listening on :%d (POST /slack/events, GET /healthz)", port)
    try:
        serve(make_wsgi_app(app), port=port)
    finally:
        services.close()


def start_socket_mode(settings: Settings) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app, services = start_app(settings)
    try:
        SocketModeHandler(app, settings.slack_app_token).start()
    finally:
        services.close()
