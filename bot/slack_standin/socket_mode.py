"""Slack's Socket Mode played locally: apps.connections.open, hello, envelopes, acks, disconnect."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socketserver
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.slack_standin import websocket as ws
from bot.slack_standin.blocks import BlocksError, validate_blocks

log = logging.getLogger(__name__)

#: Slack redelivers, and shows the user an error, when an envelope is not acked within this.
ACK_DEADLINE = 3.0
#: A connections.open URL is good for one connection, soon.
TICKET_TTL = 60.0
APP_ID = "A0ADDTOLIB"
#: Envelope types that may carry a response payload in their ack (the rest: empty ack only).
_PAYLOAD_TYPES = {"slash_commands", "interactive"}


@dataclass(frozen=True)
class Envelope:
    """One envelope the stand-in sent."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection: int
    sent_at: float
    retry_attempt: int | None = None


@dataclass(frozen=True)
class Ack:
    """One acknowledgement the client sent; ``error`` says why Slack would ignore it."""

    envelope_id: str | None
    payload: dict[str, Any] | None
    connection: int
    at: float
    sent_at: float | None = None
    error: str | None = None
    raw: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency(self) -> float | None:
        """Seconds from sending the envelope to receiving this ack."""
        return None if self.sent_at is None else self.at - self.sent_at


@dataclass
class Connection:
    """One WebSocket connection from the app."""

    number: int  # from 1, in the order the connections were greeted
    socket: ws.WebSocket
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    close_received: tuple[int, str] | None = None
    protocol_error: str | None = None
    pongs: int = 0

    @property
    def open(self) -> bool:
        return self.closed_at is None


class SocketModeStandIn:
    """The Socket Mode side of the Slack stand-in, on its own port (Slack's is wss-primary).

    ``enable(app_token)`` starts it; apps.connections.open then accepts that token only.
    Tests push envelopes with ``send`` and wait for acks with ``wait_ack``.
    """

    def __init__(self, host: str = "127.0.0.1", *, app_id: str = APP_ID) -> None:
        self.host = host
        self.port = 0
        self.app_id = app_id
        self.app_token: str | None = None
        self._cond = threading.Condition()
        self._tickets: dict[str, float] = {}
        self._connections: list[Connection] = []
        self._envelopes: list[Envelope] = []
        self._acks: list[Ack] = []
        self._server: socketserver.ThreadingTCPServer | None = None

    # -- lifecycle ---------------------------------------------------------

    def enable(self, app_token: str) -> SocketModeStandIn:
        """Accept ``app_token`` (``xapp-…``) in apps.connections.open and start listening."""
        if not app_token.startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp-")
        self.app_token = app_token
        if self._server is None:
            handler = type("_BoundHandler", (_Handler,), {"standin": self})
            server = socketserver.ThreadingTCPServer((self.host, self.port), handler)
            server.daemon_threads = True
            self.port = server.server_address[1]
            self._server = server
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"slack-socket-mode:{self.port}",
                daemon=True,
            ).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for connection in self.connections:
            connection.socket.abort()

    # -- apps.connections.open ---------------------------------------------

    def connections_open(self, token: str | None) -> dict[str, Any]:
        """The Web API answer: a one-use WebSocket URL, or Slack's error for the token."""
        if not token:
            return {"ok": False, "error": "not_authed"}
        if not token.startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if self.app_token is None or not secrets.compare_digest(token, self.app_token):
            return {"ok": False, "error": "invalid_auth"}
        ticket = uuid.uuid4().hex
        with self._cond:
            self._tickets[ticket] = time.monotonic() + TICKET_TTL
        url = f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"
        return {"ok": True, "url": url}

    def _take_ticket(self, target: str) -> None:
        parts = urlsplit(target)
        if parts.path != "/link/":
            raise ws.HandshakeError(404, "unknown path")
        ticket = (parse_qs(parts.query).get("ticket") or [""])[0]
        with self._cond:
            expires = self._tickets.pop(ticket, None)
        if expires is None or expires < time.monotonic():
            raise ws.HandshakeError(401, "invalid or used ticket")

    # -- what tests drive --------------------------------------------------

    @property
    def connections(self) -> list[Connection]:
        with self._cond:
            return list(self._connections)

    @property
    def envelopes(self) -> list[Envelope]:
        with self._cond:
            return list(self._envelopes)

    @property
    def acks(self) -> list[Ack]:
        with self._cond:
            return list(self._acks)

    def acks_of(self, envelope_id: str) -> list[Ack]:
        return [a for a in self.acks if a.envelope_id == envelope_id]

    def _wait(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = found()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{what} within {timeout}s")
                self._cond.wait(min(remaining, 0.5))

    def wait_connected(self, count: int = 1, timeout: float = 15) -> Connection:
        """The ``count``-th connection (from 1), once it has been greeted with hello."""
        return self._wait(
            lambda: len(self._connections) >= count and self._connections[count - 1],
            timeout,
            f"no connection number {count}",
        )

    def wait_closed(self, number: int, timeout: float = 15) -> Connection:
        """Connection ``number`` once it has ended (its ``protocol_error`` then says why)."""
        return self._wait(
            lambda: (
                len(self._connections) >= number
                and not self._connections[number - 1].open
                and self._connections[number - 1]
            ),
            timeout,
            f"connection number {number} still open",
        )

    def current(self) -> Connection:
        """The newest open connection (where Slack would send the next envelope)."""
        with self._cond:
            for connection in reversed(self._connections):
                if connection.open:
                    return connection
        raise ConnectionError("the app has no open Socket Mode connection")

    def send(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> Envelope:
        """Deliver an envelope on the newest open connection (same id again: a redelivery)."""
        connection = self.current()
        if accepts_response_payload is None:
            accepts_response_payload = type in _PAYLOAD_TYPES and payload.get("type") not in (
                "block_actions",
                "shortcut",
                "message_action",
                "view_closed",
            )
        message: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            message["retry_attempt"] = retry_attempt
            message["retry_reason"] = "timeout" if retry_reason is None else retry_reason
        envelope = Envelope(
            message["envelope_id"],
            type,
            payload,
            accepts_response_payload,
            connection.number,
            time.time(),
            retry_attempt,
        )
        with self._cond:
            self._envelopes.append(envelope)
        connection.socket.send_text(json.dumps(message))
        return envelope

    def wait_ack(self, envelope_id: str, timeout: float = 10, *, count: int = 1) -> Ack:
        """The ``count``-th ack of ``envelope_id``."""
        return self._wait(
            lambda: (
                len(found := [a for a in self._acks if a.envelope_id == envelope_id]) >= count
                and found[count - 1]
            ),
            timeout,
            f"no ack number {count} of envelope {envelope_id}",
        )

    def disconnect(self, reason: str = "refresh_requested", close_after: float = 2.0) -> Connection:
        """Ask the app to reconnect, as Slack does before it recycles a connection; the old one
        is closed ``close_after`` seconds later if the app has not hung up by then."""
        connection = self.current()
        message = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-standin"},
        }
        connection.socket.send_text(json.dumps(message))
        timer = threading.Timer(close_after, connection.socket.close, (1001, reason))
        timer.daemon = True
        timer.start()
        return connection

    # -- one connection ----------------------------------------------------

    def _serve(self, connection: Connection) -> None:
        hello = {
            "type": "hello",
            "num_connections": sum(c.open for c in self.connections),
            "debug_info": {
                "host": "applink-standin",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        with self._cond:  # greeted before anything else can be sent on it
            connection.socket.send_text(json.dumps(hello))
            connection.number = len(self._connections) + 1
            self._connections.append(connection)
            self._cond.notify_all()
        try:
            for opcode, data in connection.socket.messages():
                if opcode == ws.OP_PONG:
                    connection.pongs += 1
                else:
                    self._on_text(connection, data.decode("utf-8"))
        except ws.ProtocolError as error:
            connection.protocol_error = f"{error.code} {error.reason}"
            log.warning("socket mode connection %d failed: %s", connection.number, error)
        finally:
            with self._cond:
                connection.closed_at = time.time()
                connection.close_received = connection.socket.close_received
                self._cond.notify_all()

    def _on_text(self, connection: Connection, text: str) -> None:
        now = time.time()
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        payload = message.get("payload") if isinstance(message, dict) else None
        with self._cond:
            sent = [e for e in self._envelopes if e.envelope_id == envelope_id]
            acked = sum(a.envelope_id == envelope_id and a.ok for a in self._acks)
            envelope = sent[-1] if sent else None
            # A redelivered envelope is acked again; more acks than deliveries are not acks.
            error = _ack_error(message, envelope, payload, now, acked >= len(sent))
            ack = Ack(
                envelope_id if isinstance(envelope_id, str) else None,
                payload if isinstance(payload, dict) else None,
                connection.number,
                now,
                envelope.sent_at if envelope else None,
                error,
                text,
            )
            self._acks.append(ack)
            self._cond.notify_all()
        if error:
            log.warning("socket mode ack refused (%s): %s", error, text[:200])


def _ack_error(
    message: Any, envelope: Envelope | None, payload: Any, now: float, acked: bool
) -> str | None:
    """Why Slack would not take this message as an acknowledgement (None: it would)."""
    if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
        return "invalid_ack"
    if envelope is None:
        return "unknown_envelope"
    if set(message) - {"envelope_id", "payload"}:
        return "invalid_ack"
    if payload is not None:
        if not isinstance(payload, dict):
            return "invalid_payload"
        if not envelope.accepts_response_payload:
            return "payload_not_accepted"
        try:
            validate_blocks(payload.get("blocks"))
        except BlocksError:
            return "invalid_blocks"
    if now - envelope.sent_at > ACK_DEADLINE:
        return "expired"
    if acked:
        return "duplicate_ack"
    return None


class _Handler(socketserver.StreamRequestHandler):
    standin: SocketModeStandIn  # set on the bound subclass
    timeout = 10  # the handshake must arrive within this; frames then wait without limit

    def handle(self) -> None:
        try:
            method, target, version, headers = ws.read_request_head(self.rfile)
            self.standin._take_ticket(target)
            key = ws.check_upgrade(method, version, headers)
        except ws.HandshakeError as error:
            with contextlib.suppress(OSError):
                self.wfile.write(ws.refusal(error.status, error.reason))
            return
        except OSError:
            return
        self.connection.settimeout(None)
        self.wfile.write(ws.handshake_response(key))
        self.standin._serve(Connection(0, ws.WebSocket(self.connection, self.rfile)))
