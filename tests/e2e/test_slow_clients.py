"""Slow clients of every kind (SPEC 16) hold no thread: `serve` and the Procfile's web command."""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from tests.fixtures_bot import MARKETING, Bot, SlackSender, ack_text, free_assets
from tests.fixtures_slack import SIGNING_SECRET

#: ADDTOLIB_REQUEST_TIMEOUT for these tests (production: 10 s).
DEADLINE = 4.0
#: How late after the deadline a drop may still be seen (scheduling on a busy machine).
MARGIN = 1.5
CONNECTIONS = 64
#: Answers while the slow connections are open must come at once.
ANSWER_WITHIN = 1.5
#: A dripping client sends a byte this often (a byte a second against the 10 s deadline).
DRIP_EVERY = DEADLINE / 10

FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
HEAD = b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n" + FORM
# Each kind: what is sent at once. The dripping client sends DRIP byte by byte instead.
KINDS: dict[str, bytes] = {
    "stalled headers": b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Ty",
    "stalled body": HEAD + b"Content-Length: 500\r\n\r\ntoken=half-a-body",
    # A whole request answered, then nothing (or half a head) on the kept-alive connection.
    "kept alive, then stalled": b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\nGET /hea",
    "chunked, never ends": HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\ntoken\r\n",
    # An empty chunked body: whole, answered, and the connection is then kept alive idle.
    "chunked 0 CRLF CRLF": HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "drips a byte at a time": b"",
}
DRIP = HEAD + b"Content-Length: 100\r\n\r\n" + b"t" * 100


@dataclass
class Slow:
    kind: str
    sock: socket.socket
    opened: float
    dropped: float | None = None
    dripped: int = 0
    answers: bytearray = field(default_factory=bytearray)


@contextmanager
def slow_connections(host: str, port: int) -> Iterator[list[Slow]]:
    """CONNECTIONS connections, the kinds in turn; a thread drips and notes when each closes."""
    kinds = itertools.cycle(KINDS)
    slow: list[Slow] = []
    for kind in itertools.islice(kinds, CONNECTIONS):
        sock = socket.create_connection((host, port), timeout=5)
        slow.append(Slow(kind, sock, time.monotonic()))
        if KINDS[kind]:
            sock.sendall(KINDS[kind])
        sock.setblocking(False)
    done = threading.Event()
    watcher = threading.Thread(target=watch, args=(slow, done), daemon=True)
    watcher.start()
    try:
        yield slow
        watcher.join(DEADLINE + MARGIN + 2)
    finally:
        done.set()
        for one in slow:
            one.sock.close()


def watch(slow: list[Slow], done: threading.Event) -> None:
    """Drip, and record the moment the server closes each connection, until all are closed."""
    selector = selectors.DefaultSelector()
    for one in slow:
        selector.register(one.sock, selectors.EVENT_READ, one)
    open_ = {id(one) for one in slow}
    next_drip = time.monotonic()
    while open_ and not done.is_set():
        now = time.monotonic()
        if now >= next_drip:
            next_drip = now + DRIP_EVERY
            for one in slow:
                if one.kind == "drips a byte at a time" and id(one) in open_:
                    try:
                        one.sock.send(DRIP[one.dripped % len(DRIP) : one.dripped % len(DRIP) + 1])
                        one.dripped += 1
                    except OSError:
                        pass  # closed: the read side notices
        for key, _ in selector.select(timeout=max(0.0, min(0.05, next_drip - now))):
            one = key.data
            try:
                data = one.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                one.answers += data  # a kept-alive connection's answer, or a 4xx before closing
                continue
            one.dropped = time.monotonic()
            selector.unregister(one.sock)
            open_.discard(id(one))
    selector.close()


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def answers_at_once(bot: Bot) -> float:
    """/healthz and a signed command answered within ANSWER_WITHIN; a forged one refused."""
    elapsed, health = timed(lambda: requests.get(f"{bot.process.url}/healthz", timeout=5))
    assert health.status_code == 200 and elapsed < ANSWER_WITHIN, elapsed
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    elapsed, (response, _) = timed(lambda: bot.command(f"{MARKETING} {asset}"))
    assert response.status_code == 200 and elapsed < ANSWER_WITHIN, elapsed
    assert "Checking 1 asset" in ack_text(response)
    forged = SlackSender(bot.process.url, SIGNING_SECRET[::-1], standin=bot.slack)
    assert forged.command("help").status_code == 401
    return time.monotonic()


def check_slow_clients(bot: Bot) -> None:
    with slow_connections(bot.process.host, bot.process.port) as slow:
        answered = answers_at_once(bot)
    # The answers came while every slow connection was still open...
    assert all(one.dropped is None or one.dropped > answered for one in slow)
    # ...and each was dropped within the deadline of its start.
    late = {
        (one.kind, None if one.dropped is None else round(one.dropped - one.opened, 2))
        for one in slow
        if one.dropped is None or one.dropped - one.opened > DEADLINE + MARGIN
    }
    assert not late, late
    for one in slow:
        if one.kind in ("kept alive, then stalled", "chunked 0 CRLF CRLF"):
            assert one.answers.startswith(b"HTTP/1.1 "), (one.kind, bytes(one.answers[:80]))
    assert min(one.dripped for one in slow if one.kind == "drips a byte at a time") >= 3
    answers_at_once(bot)  # and after


def test_serve_answers_while_64_slow_clients_of_every_kind_are_dropped(
    start_bot: Callable[..., Bot],
) -> None:
    check_slow_clients(start_bot(ADDTOLIB_REQUEST_TIMEOUT=str(int(DEADLINE)), process=True))


def test_the_procfile_web_command_answers_while_64_slow_clients_are_dropped(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(procfile=True, ADDTOLIB_REQUEST_TIMEOUT=str(int(DEADLINE)), WEB_CONCURRENCY="2")
    check_slow_clients(bot)
    assert bot.process.output().count("started web process") == 2
