"""The server side of RFC 6455 WebSockets on a plain socket, stdlib only, strict about framing."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from io import BufferedIOBase

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_DATA = (OP_CONTINUATION, OP_TEXT, OP_BINARY)
_CONTROL = (OP_CLOSE, OP_PING, OP_PONG)
MAX_MESSAGE = 1 << 20  # Socket Mode acks are small; a bigger message is refused (1009)
MAX_REQUEST_HEAD = 16 * 1024

# Close codes (RFC 6455 7.4.1) a peer may send; 1005/1006/1015 must never be on the wire.
_VALID_CLOSE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


class HandshakeError(Exception):
    """An opening handshake the server refuses with an HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ProtocolError(Exception):
    """A frame that breaks RFC 6455: the connection is failed with close ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def read_request_head(rfile: BufferedIOBase) -> tuple[str, str, str, dict[str, str]]:
    """(method, target, version, lower-cased headers) of an HTTP/1.1 request head."""
    lines: list[str] = []
    size = 0
    while True:
        line = rfile.readline(MAX_REQUEST_HEAD + 1)
        if not line:
            raise HandshakeError(400, "connection closed during the handshake")
        size += len(line)
        if size > MAX_REQUEST_HEAD:
            raise HandshakeError(431, "request head too large")
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            break
        lines.append(text)
    if not lines:
        raise HandshakeError(400, "empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HandshakeError(400, "bad request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for text in lines[1:]:
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip():
            raise HandshakeError(400, f"bad header line {text!r}")
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return method, target, version, headers


def check_upgrade(method: str, version: str, headers: dict[str, str]) -> str:
    """The client's key, once the request is a valid opening handshake (RFC 6455 4.2.1)."""
    if method != "GET":
        raise HandshakeError(405, "a WebSocket handshake is a GET")
    if version != "HTTP/1.1":
        raise HandshakeError(400, "a WebSocket handshake needs HTTP/1.1")
    if "host" not in headers:
        raise HandshakeError(400, "no Host header")
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError(400, "Upgrade: websocket missing")
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if "upgrade" not in tokens:
        raise HandshakeError(400, "Connection: Upgrade missing")
    if headers.get("sec-websocket-version") != "13":
        raise HandshakeError(426, "Sec-WebSocket-Version must be 13")
    key = headers.get("sec-websocket-key", "")
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes, base64")
    return key


def handshake_response(key: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    ).encode()


def refusal(status: int, reason: str) -> bytes:
    body = reason.encode()
    return (
        f"HTTP/1.1 {status} Refused\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A server frame: never masked (RFC 6455 5.1)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n <= 125:
        head += bytes([n])
    elif n <= 0xFFFF:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class WebSocket:
    """One accepted connection: send text, ping and close; iterate over what the client sends."""

    def __init__(self, sock: socket.socket, rfile: BufferedIOBase) -> None:
        self._sock = sock
        self._rfile = rfile
        self._send_lock = threading.Lock()
        self.close_sent = False
        self.close_received: tuple[int, str] | None = None

    def _send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            if self.close_sent:
                raise ConnectionError("the close frame was already sent")
            if opcode == OP_CLOSE:
                self.close_sent = True
            self._sock.sendall(encode_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self._send(OP_TEXT, text.encode())

    def ping(self, payload: bytes = b"") -> None:
        self._send(OP_PING, payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (once); the reader ends when the client answers or hangs up."""
        with contextlib.suppress(OSError, ConnectionError):
            self._send(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123])

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network failure)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _read(self, n: int) -> bytes:
        data = self._rfile.read(n) if n else b""
        if len(data) != n:
            raise EOFError
        return data

    def _frame(self) -> tuple[bool, int, bytes]:
        b1, b2 = self._read(2)
        fin, opcode = bool(b1 & 0x80), b1 & 0x0F
        if b1 & 0x70:
            raise ProtocolError(1002, "RSV bits set without a negotiated extension")
        if opcode not in _DATA + _CONTROL:
            raise ProtocolError(1002, f"unknown opcode {opcode:#x}")
        if not b2 & 0x80:
            raise ProtocolError(1002, "client frames must be masked")
        length = b2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
            if length <= 125:
                raise ProtocolError(1002, "length not minimally encoded")
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
            if length <= 0xFFFF or length >> 63:
                raise ProtocolError(1002, "length not minimally encoded")
        if opcode in _CONTROL and (length > 125 or not fin):
            raise ProtocolError(1002, "control frames are short and never fragmented")
        if length > MAX_MESSAGE:
            raise ProtocolError(1009, "message too big")
        mask = self._read(4)
        data = self._read(length)
        return fin, opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def messages(self) -> Iterator[tuple[int, bytes]]:
        """Yield (OP_TEXT, utf-8 bytes) messages, reassembled, and (OP_PONG, payload) frames.

        Pings are answered, a close is echoed; ends when the connection closes. A protocol
        error fails the connection with the matching close code and is re-raised.
        """
        buffer: bytearray | None = None
        try:
            while True:
                try:
                    fin, opcode, data = self._frame()
                except EOFError:
                    return
                if opcode == OP_PING:
                    with contextlib.suppress(ConnectionError):
                        self._send(OP_PONG, data)
                elif opcode == OP_PONG:
                    yield OP_PONG, data
                elif opcode == OP_CLOSE:
                    self._on_close(data)
                    return
                elif opcode == OP_BINARY:
                    raise ProtocolError(1003, "Socket Mode speaks text, not binary")
                elif opcode == OP_TEXT:
                    if buffer is not None:
                        raise ProtocolError(1002, "a new message inside a fragmented one")
                    buffer = bytearray(data)
                else:  # continuation
                    if buffer is None:
                        raise ProtocolError(1002, "continuation without a message to continue")
                    buffer += data
                if buffer is not None and opcode in (OP_TEXT, OP_CONTINUATION):
                    if len(buffer) > MAX_MESSAGE:
                        raise ProtocolError(1009, "message too big")
                    if fin:
                        message, buffer = bytes(buffer), None
                        try:
                            message.decode("utf-8")
                        except UnicodeDecodeError:
                            raise ProtocolError(1007, "text message is not UTF-8") from None
                        yield OP_TEXT, message
        except ProtocolError as error:
            self.close(error.code, error.reason)
            raise
        finally:
            self.abort()

    def _on_close(self, data: bytes) -> None:
        if len(data) == 1:
            raise ProtocolError(1002, "a close payload of one byte")
        code, reason = 1005, ""
        if data:
            (code,) = struct.unpack("!H", data[:2])
            if code not in _VALID_CLOSE and not 3000 <= code <= 4999:
                raise ProtocolError(1002, f"close code {code} is not allowed")
            try:
                reason = data[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(1007, "close reason is not UTF-8") from None
        self.close_received = (code, reason)
        self.close(1000 if code == 1005 else code)
