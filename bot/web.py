"""Slack's HTTP endpoint (POST /slack/events, GET /healthz, /readyz, /metrics), and its server."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.wsgi import WSGIContainer

from bot import metrics
from bot.slack import payload_shapes

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
#: Slack's payloads are small; anything larger is refused before it reaches Bolt.
MAX_BODY_BYTES = 1024 * 1024
#: What Slack sends: slash commands and interactivity are form-encoded, Events API is JSON.
ACCEPTED_TYPES = ("application/x-www-form-urlencoded", "application/json")

#: A connection that has not sent a whole request within this many seconds is dropped
#: (ADDTOLIB_REQUEST_TIMEOUT).
REQUEST_TIMEOUT = 10.0
#: How far past max_body the server still reads a body, for the app to answer 413.
BODY_HEADROOM = 64 * 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _json_response(
    start_response: Callable[..., Any],
    status: str,
    obj: Any,
    extra_headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = json.dumps(obj).encode()
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    start_response(status, headers + (extra_headers or []))
    return [body]


def make_wsgi_app(
    bolt_app: Any,
    *,
    path: str = EVENTS_PATH,
    max_body: int = MAX_BODY_BYTES,
    health: Callable[[], dict[str, Any]] | None = None,
    ready: Callable[[], str | None] | None = None,
) -> WSGIApp:
    """A WSGI callable: ``POST path`` to Bolt, ``GET /healthz``, ``/readyz``, ``/metrics``.

    Bodies over ``max_body`` bytes get 413 without reaching Bolt. Bolt verifies Slack's
    signature itself (401 on failure). ``health`` may add fields to the /healthz answer;
    ``ready`` returns why the process is not ready (None when it is) for /readyz.
    """
    handler = ShapeCheckedHandler(bolt_app, path=path)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = environ.get("PATH_INFO", "")
        if route in (READY_PATH, METRICS_PATH):
            if method not in ("GET", "HEAD"):
                return _json_response(
                    start_response,
                    "405 Method Not Allowed",
                    {"ok": False, "error": "method_not_allowed"},
                    [("Allow", "GET, HEAD")],
                )
            if route == METRICS_PATH:
                body, content_type = metrics.exposition()
                start_response(
                    "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
                )
                return [body]
            problem = ready() if ready is not None else None
            if problem:
                return _json_response(
                    start_response, "503 Service Unavailable", {"ok": False, "error": problem}
                )
            return _json_response(start_response, "200 OK", {"ok": True})
        if route == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                return _json_response(
                    start_response,
                    "405 Method Not Allowed",
                    {"ok": False, "error": "method_not_allowed"},
                    [("Allow", "GET, HEAD")],
                )
            status = {"ok": True}
            if health is not None:
                status.update(health())
            return _json_response(start_response, "200 OK", status)
        if route != path:
            return _json_response(
                start_response, "404 Not Found", {"ok": False, "error": "not_found"}
            )
        if method != "POST":
            return _json_response(
                start_response,
                "405 Method Not Allowed",
                {"ok": False, "error": "method_not_allowed"},
                [("Allow", "POST")],
            )
        environ, too_large = _bounded_body(environ, max_body)
        if too_large is None:
            return _json_response(
                start_response, "400 Bad Request", {"ok": False, "error": "bad_content_length"}
            )
        if too_large:
            log.warning("refused a %s request body over %d bytes", path, max_body)
            return _json_response(
                start_response,
                "413 Content Too Large",
                {"ok": False, "error": "request_too_large"},
            )
        refusal = _refuse_malformed(environ)
        if refusal is not None:
            code, error = refusal
            return _json_response(start_response, code, {"ok": False, "error": error})
        started = time.monotonic()
        try:
            return handler(environ, start_response)
        except ValueError:
            # Bolt decodes and parses the body before it checks the signature: a body that is
            # not UTF-8, or broken JSON, is malformed (and most likely forged), not our error.
            log.warning("refused a %s request whose body could not be parsed", path)
            return _json_response(
                start_response, "400 Bad Request", {"ok": False, "error": "malformed_body"}
            )
        except Exception:
            log.exception("unhandled error dispatching a Slack request")
            return _json_response(
                start_response,
                "500 Internal Server Error",
                {"ok": False, "error": "internal_error"},
            )
        finally:
            metrics.ACK_LATENCY.observe(time.monotonic() - started)

    return app


class ShapeCheckedHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, refusing with 400 a payload Bolt raises on while reading it.

    BoltRequest reads the user, team, channel and enterprise while it is built, before any
    middleware: `"id" in user` raises for a number, `.get` for a list body. The rest of the
    payload's shape is checked by payload_shapes.ShapeCheck inside the app.
    """

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        try:
            bolt_request = BoltRequest(
                body=request.get_body(), query=request.query_string, headers=request.get_headers()
            )
        except payload_shapes.BOLT_SHAPE_ERRORS as error:
            return payload_shapes.unreadable(error)
        return self.app.dispatch(bolt_request)


def _refuse_malformed(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(status, error) for a request Slack would never send, checked before Bolt sees it.

    A content type Bolt would still parse as a form is refused (415), and so is a timestamp
    that is not a whole number (401): slack_sdk's verifier raises on it instead of refusing.
    """
    media = (environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        return "415 Unsupported Media Type", "unsupported_content_type"
    stamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    if stamp is not None and not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return "401 Unauthorized", "invalid_request"
    return None


def _bounded_body(environ: dict[str, Any], max_body: int) -> tuple[dict[str, Any], bool | None]:
    """(environ, too_large); too_large is None for a malformed Content-Length.

    A chunked body (no Content-Length) is read up to the limit and handed on buffered.
    """
    raw_length = environ.get("CONTENT_LENGTH") or ""
    if raw_length.strip():
        try:
            length = int(raw_length)
        except ValueError:
            return environ, None
        if length < 0:
            return environ, None
        return environ, length > max_body
    stream = environ.get("wsgi.input")
    if stream is None or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return environ, False
    data = stream.read(max_body + 1)
    if len(data) > max_body:
        return environ, True
    environ = dict(environ)
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    return environ, False


class _AccessLog:
    """Logs each request through ``bot.web.access``: method, path without its query, status."""

    log = logging.getLogger("bot.web.access")

    def __init__(self, app: WSGIApp):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def logged(status: str, headers: Any, exc_info: Any = None) -> Any:
            self.log.info(
                "%s %s %s %s",
                environ.get("REMOTE_ADDR", "-"),
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", "-"),
                status.split(" ", 1)[0],
            )
            return start_response(status, headers, exc_info)

        return self.app(environ, logged)


class WebServer:
    """Tornado's HTTP server with the WSGI app on a thread pool; a slow client holds no thread.

    Tornado's event loop reads each request whole before a thread sees it (``WSGIContainer``
    with an ``executor``, Tornado 6.3+), and drops a connection whose head, or whose body, has
    not arrived within half of ``request_timeout`` each: both are deadlines from the moment
    reading starts, not idle timers, so dripping a byte a second does not extend them. A
    kept-alive connection waits for its next head under the same deadline.
    """

    def __init__(
        self,
        wsgi_app: WSGIApp,
        sockets: list[socket.socket],
        *,
        threads: int = 16,
        request_timeout: float = REQUEST_TIMEOUT,
        max_body: int = MAX_BODY_BYTES,
    ):
        # WSGIContainer logs each request with its query string; _AccessLog leaves that out.
        logging.getLogger("tornado.access").disabled = True
        self.sockets = sockets
        self.server_address = sockets[0].getsockname()[:2]
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="web")
        self.app = _AccessLog(wsgi_app)
        self.request_timeout = request_timeout
        self.max_body = max_body
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._stop_task: asyncio.Future[None] | None = None

    def serve_forever(self, before_stop: Callable[[], object] | None = None) -> None:
        """Serve until shutdown(), or SIGTERM/SIGINT when called on the main thread.

        On a signal ``before_stop`` runs first (on a thread) while requests are still answered.
        """
        try:
            asyncio.run(self._serve(before_stop))
        finally:
            self._stopped.set()

    async def _serve(self, before_stop: Callable[[], object] | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = HTTPServer(
            WSGIContainer(self.app, executor=self.executor),
            idle_connection_timeout=self.request_timeout / 2,  # the head's deadline
            body_timeout=self.request_timeout / 2,
            # Over the app's own limit, so that it answers 413 for a body just over; a far
            # larger announced body is refused (400) before a byte of it is read.
            max_body_size=self.max_body + BODY_HEADROOM,
        )
        server.add_sockets(self.sockets)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._on_signal, sig, before_stop)
        self._started.set()
        await self._stopping.wait()
        server.stop()
        await server.close_all_connections()

    def _on_signal(self, signum: int, before_stop: Callable[[], object] | None) -> None:
        log.info("received signal %d, shutting down", signum)

        async def stop() -> None:
            if before_stop is not None:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, before_stop)
                except Exception:
                    log.exception("draining before the stop failed")
            assert self._stopping is not None
            self._stopping.set()

        self._stop_task = asyncio.ensure_future(stop())

    def shutdown(self) -> None:
        """Stop serving (from another thread) and wait until serve_forever() has returned."""
        self._started.wait()
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._stopped.wait()

    def server_close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def listen(host: str = "0.0.0.0", port: int = 3000) -> list[socket.socket]:
    """Listening sockets on host:port (port 0 picks a free port)."""
    return bind_sockets(port, address=host, backlog=128)


def make_threaded_server(
    wsgi_app: WSGIApp,
    host: str = "0.0.0.0",
    port: int = 3000,
    *,
    threads: int = 16,
    request_timeout: float = REQUEST_TIMEOUT,
) -> WebServer:
    """A bound, not yet serving, server (port 0 picks a free port)."""
    return WebServer(wsgi_app, listen(host, port), threads=threads, request_timeout=request_timeout)


def serve(
    wsgi_app: WSGIApp,
    host: str = "0.0.0.0",
    port: int = 3000,
    *,
    sockets: list[socket.socket] | None = None,
    threads: int = 16,
    request_timeout: float = REQUEST_TIMEOUT,
    on_ready: Callable[[WebServer], None] | None = None,
    before_stop: Callable[[], object] | None = None,
) -> None:
    """Serve ``wsgi_app`` until SIGTERM/SIGINT (or ``server.shutdown()`` from another thread).

    Signal handlers are installed only when called from the main thread. ``on_ready``
    receives the bound server before serving starts (tests use it to learn the port).
    ``before_stop`` runs on a signal while the server still answers (draining), then it stops.
    ``sockets`` (already listening, e.g. shared by forked processes) replace host and port.
    """
    server = WebServer(
        wsgi_app,
        sockets if sockets is not None else listen(host, port),
        threads=threads,
        request_timeout=request_timeout,
    )
    bound_host, bound_port = server.server_address[:2]
    log.info("listening on http://%s:%d (POST %s)", bound_host, bound_port, EVENTS_PATH)
    try:
        if on_ready is not None:
            on_ready(server)
        server.serve_forever(before_stop)
    finally:
        server.server_close()
        log.info("stopped")
