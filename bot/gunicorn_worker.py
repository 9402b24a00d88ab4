"""gunicorn's gthread worker, with each request read whole by the poller before a thread runs it."""

from __future__ import annotations

import contextlib
import selectors
import time
from collections import deque
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

from bot.config import load_settings

#: A connection that has not sent a whole request within this many seconds is dropped
#: (the default of ADDTOLIB_REQUEST_TIMEOUT, bot.config).
REQUEST_READ_TIMEOUT = 10.0
#: Read at most this much ahead; a larger request goes to a thread, which refuses it (413).
MAX_PREREAD = 1024 * 1024 + 64 * 1024
_HEADERS_END = b"\r\n\r\n"


def request_complete(data: bytes) -> bool:
    """Whether `data` holds a whole HTTP/1.x request (head, and a body of the length it names).

    Only decides when a thread may take the request over; gunicorn's parser still parses it.
    A head it cannot make sense of counts as complete, so that the parser answers 400.
    """
    end = data.find(_HEADERS_END)
    if end < 0:
        return len(data) >= MAX_PREREAD
    head, body = data[:end].lower(), data[end + len(_HEADERS_END) :]
    if b"transfer-encoding:" in head and b"chunked" in head:
        return body.endswith(b"0\r\n\r\n") or len(body) >= MAX_PREREAD
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return True
            return len(body) >= min(length, MAX_PREREAD)
    return True


class PrereadThreadWorker(ThreadWorker):
    """gthread, where a slow or stalled client never holds one of the worker's threads.

    gthread hands a connection to a thread as soon as it is readable, and the thread then
    blocks in recv() until the whole request arrives: 16 clients that send half a request
    and stop take all 16 threads, and /healthz and Slack's requests wait forever. Here the
    main loop's poller reads each request (non-blocking) until it is whole, and only then
    gives it to a thread; a connection that has not sent a whole request within
    ADDTOLIB_REQUEST_TIMEOUT seconds is closed. Plain HTTP only: behind TLS, use stock gthread
    and let the terminating proxy buffer requests.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading_conns: deque = deque()
        # ADDTOLIB_REQUEST_TIMEOUT (default REQUEST_READ_TIMEOUT), as the app reads it.
        self.request_timeout = load_settings().request_timeout

    def enqueue_req(self, conn) -> None:
        if self.cfg.is_ssl or getattr(conn, "preread_done", False):
            conn.preread_done = False
            super().enqueue_req(conn)
            return
        # A kept-alive connection may hold the start of its next request already.
        buffered = conn.parser.unreader.take_buffered() if conn.parser else b""
        conn.preread = bytearray(buffered)
        conn.preread_deadline = time.monotonic() + self.request_timeout
        if buffered and request_complete(bytes(buffered)):
            self._hand_over(conn)
            return
        conn.sock.setblocking(False)
        self.reading_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn, _sock) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._stop_reading(conn)
            self.nr_conns -= 1
            conn.close()
            return
        conn.preread += data
        if request_complete(bytes(conn.preread)):
            self._stop_reading(conn)
            self._hand_over(conn)

    def _stop_reading(self, conn) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        with contextlib.suppress(ValueError):
            self.reading_conns.remove(conn)

    def _hand_over(self, conn) -> None:
        conn.preread_done = True
        conn.data_ready = True  # gthread must not wait for more data before parsing
        super().enqueue_req(conn)

    def handle(self, conn):
        data = bytes(getattr(conn, "preread", b""))
        conn.preread = bytearray()
        if data:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
        return super().handle(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        # Deadlines are set in arrival order, so the oldest is first.
        while self.reading_conns and self.reading_conns[0].preread_deadline <= now:
            conn = self.reading_conns[0]
            self._stop_reading(conn)
            self.nr_conns -= 1
            conn.close()
