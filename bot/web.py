"""WSGI app for Slack's HTTP endpoint (POST /slack/events, GET /healthz, /readyz, /metrics)."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot import metrics

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
#: Slack's payloads are small; anything larger is refused before it reaches Bolt.
MAX_BODY_BYTES = 1024 * 1024
#: What Slack sends: slash commands and interactivity are form-encoded, Events API is JSON.
ACCEPTED_TYPES = ("application/x-www-form-urlencoded", "application/json")

#: A connection that has not sent a whole request within this many seconds is dropped.
REQUEST_READ_TIMEOUT = 10.0
# Once a request is read, writing the answer gets an ordinary per-send timeout.
WRITE_TIMEOUT = 30.0

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
    handler = SlackRequestHandler(bolt_app, path=path)

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
            status, error = refusal
            return _json_response(start_response, status, {"ok": False, "error": error})
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


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """wsgiref's server, one daemon thread per connection."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _DeadlineSocketReader(io.RawIOBase):
    """The socket's read side, where every recv must finish before one deadline for the
    whole request.

    A per-recv timeout alone lets a client that trickles a byte every few seconds hold a
    connection forever; this bounds the whole request instead.
    """

    def __init__(self, sock: Any, deadline: float):
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not received in time")
        self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(WRITE_TIMEOUT)


class QuietRequestHandler(WSGIRequestHandler):
    """Logs each request through ``logging``, without query strings, instead of stderr.

    A connection that has not sent a whole request within REQUEST_READ_TIMEOUT seconds is
    dropped (its thread is freed).
    """

    access_log = logging.getLogger("bot.web.access")
    request_timeout = REQUEST_READ_TIMEOUT

    def setup(self) -> None:
        super().setup()
        deadline = time.monotonic() + self.request_timeout
        self.rfile = io.BufferedReader(_DeadlineSocketReader(self.connection, deadline))

    def handle(self) -> None:
        try:
            super().handle()
        except TimeoutError:
            log.info(
                "dropped a connection from %s: no whole request within %g s",
                self.client_address[0],
                self.request_timeout,
            )

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        path = getattr(self, "path", None)  # unset when the request line was unreadable
        path = path.split("?", 1)[0] if isinstance(path, str) else "-"
        self.access_log.info("%s %s %s %s", self.client_address[0], self.command, path, code)

    def log_error(self, format: str, *args: Any) -> None:
        log.warning("%s " + format, self.client_address[0], *args)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s " + format, self.client_address[0], *args)


def make_threaded_server(
    wsgi_app: WSGIApp,
    host: str = "0.0.0.0",
    port: int = 3000,
    request_timeout: float = REQUEST_READ_TIMEOUT,
) -> ThreadingWSGIServer:
    """A bound, not yet serving, threaded WSGI server (port 0 picks a free port)."""
    handler = QuietRequestHandler
    if request_timeout != handler.request_timeout:
        handler = type("QuietRequestHandler", (handler,), {"request_timeout": request_timeout})
    return make_server(
        host, port, wsgi_app, server_class=ThreadingWSGIServer, handler_class=handler
    )


def serve(
    wsgi_app: WSGIApp,
    host: str = "0.0.0.0",
    port: int = 3000,
    *,
    on_ready: Callable[[ThreadingWSGIServer], None] | None = None,
    before_stop: Callable[[], None] | None = None,
    request_timeout: float = REQUEST_READ_TIMEOUT,
) -> None:
    """Serve ``wsgi_app`` until SIGTERM/SIGINT (or ``server.shutdown()`` from another thread).

    Signal handlers are installed only when called from the main thread. ``on_ready``
    receives the bound server before serving starts (tests use it to learn the port).
    ``before_stop`` runs on a signal while the server still answers (draining), then it stops.
    """
    server = make_threaded_server(wsgi_app, host, port, request_timeout)
    bound_host, bound_port = server.server_address[:2]
    log.info("listening on http://%s:%d (POST %s)", bound_host, bound_port, EVENTS_PATH)

    def request_shutdown(signum: int, frame: Any) -> None:
        log.info("received signal %d, shutting down", signum)

        def stop() -> None:
            if before_stop is not None:
                try:
                    before_stop()
                except Exception:
                    log.exception("draining before the stop failed")
            server.shutdown()

        # shutdown() waits for serve_forever() to return, so it must not run on this thread.
        threading.Thread(target=stop, name="web-shutdown", daemon=True).start()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, request_shutdown)
    try:
        if on_ready is not None:
            on_ready(server)
        server.serve_forever(poll_interval=0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        log.info("stopped")
