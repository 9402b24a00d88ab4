"""Slow or stalled clients never starve the server: gunicorn (the Procfile's config) and serve."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import requests

from tests.bot_process import REPO_ROOT, BotProcess, gunicorn_path
from tests.fixtures_bot import MARKETING, Bot, SlackSender, ack_text, free_assets
from tests.fixtures_slack import SIGNING_SECRET

STALLED = 32
# Time as a parameter: connections get ADDTOLIB_REQUEST_TIMEOUT = 3 s (production: 10 s) to
# send a whole request.
REQUEST_TIMEOUT = 3.0
SHORT = {"ADDTOLIB_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)}
# The bound for /healthz and a signed command while connections stall.
ANSWER_WITHIN = 2.0
PARTIAL_REQUEST = (
    b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded"
    b"\r\nContent-Length: 500\r\n\r\ntoken=half-a-body"
)


@contextmanager
def stalled_connections(process: BotProcess, count: int = STALLED) -> Iterator[list[socket.socket]]:
    """`count` connections that each send part of a request (head, or head and some body)."""
    with ExitStack() as stack:
        socks = []
        for n in range(count):
            sock = stack.enter_context(socket.create_connection((process.host, process.port)))
            # Half stop inside the head, half inside the body.
            sock.sendall(PARTIAL_REQUEST[: 40 if n % 2 else len(PARTIAL_REQUEST)])
            socks.append(sock)
        time.sleep(0.5)  # let the server take every one of them in
        yield socks


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True if the server closes `sock` (EOF or reset) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
            # A 408/400 answer before closing is fine too; keep reading to the EOF.
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def answers_while_stalled(bot: Bot) -> None:
    elapsed, health = timed(lambda: requests.get(f"{bot.process.url}/healthz", timeout=5))
    assert health.status_code == 200 and elapsed < ANSWER_WITHIN, elapsed
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    elapsed, (response, _) = timed(lambda: bot.command(f"{MARKETING} {asset}"))
    assert response.status_code == 200 and elapsed < ANSWER_WITHIN, elapsed
    assert "Checking 1 asset" in ack_text(response)
    forged = SlackSender(bot.process.url, SIGNING_SECRET[::-1], standin=bot.slack)
    assert forged.command("help").status_code == 401


def test_gunicorn_with_the_procfile_config_answers_while_32_connections_stall(
    start_bot: Callable[..., Bot], bot_process, bot_env: dict[str, str], simulator, slack
) -> None:
    # The Procfile's web process: gunicorn bot.wsgi:app --config gunicorn.conf.py.
    procfile = (REPO_ROOT / "Procfile").read_text()
    assert "gunicorn bot.wsgi:app --config gunicorn.conf.py" in procfile
    process = bot_process(
        {**bot_env, **SHORT}, argv=[gunicorn_path(), "bot.wsgi:app", "--config", "gunicorn.conf.py"]
    )
    bot = Bot(
        process, slack, simulator, SlackSender(process.url, SIGNING_SECRET, standin=slack), bot_env
    )
    with stalled_connections(process) as socks:
        answers_while_stalled(bot)
        # The stalled ones are dropped after 3 s (generous: the worker checks once a second).
        assert all(closed_by_server(sock, timeout=REQUEST_TIMEOUT + 5) for sock in socks)
    answers_while_stalled(bot)
    assert "Using worker: bot.gunicorn_worker.PrereadThreadWorker" in process.output()


def test_serve_drops_connections_without_a_whole_request_after_the_request_timeout(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(**SHORT)
    connected = time.monotonic()
    with stalled_connections(bot.process) as socks:
        answers_while_stalled(bot)
        # Not before the timeout is up (less half a second: the clocks start apart)...
        early = connected + REQUEST_TIMEOUT - 0.5 - time.monotonic()
        assert early > 0 and not closed_by_server(socks[-1], timeout=early)
        # ...and all of them soon after.
        assert all(closed_by_server(sock, timeout=4) for sock in socks)
        assert time.monotonic() - connected < REQUEST_TIMEOUT + 5
    assert "no whole request within 3 s" in bot.process.output()


def test_serve_drops_a_client_that_trickles_its_request(start_bot: Callable[..., Bot]) -> None:
    # A byte every 0.2 s keeps a per-read timeout happy forever; the deadline is per request.
    bot = start_bot(**SHORT)
    with socket.create_connection((bot.process.host, bot.process.port)) as sock:
        started = time.monotonic()
        dropped = False
        for byte in PARTIAL_REQUEST:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                dropped = True
                break
            time.sleep(0.2)
            if time.monotonic() - started > REQUEST_TIMEOUT + 5:
                break
            sock.settimeout(0.01)
            try:
                if sock.recv(1) == b"":
                    dropped = True
                    break
            except TimeoutError:
                pass
        assert dropped and time.monotonic() - started < REQUEST_TIMEOUT + 4
