"""bot.web over real HTTP: routing, Slack signatures via Bolt, body limit, serve and gunicorn."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from bot.slack_standin import SlackStandIn
from bot.web import MAX_BODY_BYTES, WebServer, make_wsgi_app, serve
from tests.bot_process import BotProcess
from tests.slack_requests import SlackSender
from tests.tiny_bolt_app import build_bolt_app


@pytest.fixture
def web(slack: SlackStandIn, signing_secret: str) -> Iterator[str]:
    """The tiny Bolt app served in-process by ``serve`` on a free port; yields its URL."""
    app = make_wsgi_app(build_bolt_app(signing_secret, slack.url))
    ready: list[WebServer] = []
    thread = threading.Thread(
        target=serve, args=(app, "127.0.0.1", 0), kwargs={"on_ready": ready.append}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not ready and time.monotonic() < deadline:
        time.sleep(0.01)
    server = ready[0]
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)
    assert not thread.is_alive()


@pytest.fixture
def sender(web: str, signing_secret: str, slack: SlackStandIn) -> SlackSender:
    return SlackSender(web, signing_secret, standin=slack)


def test_signed_command_is_acknowledged(sender: SlackSender) -> None:
    resp = sender.command("lib abc123")
    assert resp.status_code == 200
    assert resp.text == "ack: lib abc123"


def test_click_reaches_listener_which_responds(sender: SlackSender, slack: SlackStandIn) -> None:
    resp = sender.click("addtolib_confirm", "op42", user_id="U0EDITOR")
    assert resp.status_code == 200
    key = resp.slack_response_url.rsplit("/", 1)[1]
    call = slack.wait_for(lambda c: c.method == "response_url" and c.key == key, timeout=5)
    assert call.payload["text"] == "confirmed op42 by U0EDITOR"


def test_bad_signature_is_refused(sender: SlackSender) -> None:
    body = "command=%2Faddtolib&text=x&user_id=U1"
    headers = sender.sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert sender.raw(body, headers).status_code == 401
    assert (
        sender.raw(body, {"Content-Type": "application/x-www-form-urlencoded"}).status_code == 401
    )


def test_stale_timestamp_is_refused(sender: SlackSender) -> None:
    resp = sender.command("x", timestamp=int(time.time()) - 6 * 60)
    assert resp.status_code == 401


def test_body_signed_by_other_secret_is_refused(web: str) -> None:
    assert SlackSender(web, "not-the-secret").command("x").status_code == 401


def test_healthz_and_unknown_paths(web: str) -> None:
    resp = requests.get(f"{web}/healthz", timeout=5)
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    resp = requests.get(f"{web}/nope", timeout=5)
    assert resp.status_code == 404 and resp.json()["ok"] is False
    assert requests.post(f"{web}/slack/other", timeout=5).status_code == 404
    assert requests.get(f"{web}/slack/events", timeout=5).status_code == 405
    assert requests.post(f"{web}/healthz", timeout=5).status_code == 405


def test_oversized_body_is_refused_unread(web: str) -> None:
    # Announce 50 MiB and send nothing: refused (the server's 400, or the app's 413) unread.
    port = int(web.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 52428800\r\n\r\n"
        )
        answer = sock.recv(4096).decode()
    assert answer.split("\r\n", 1)[0].split()[1] in ("400", "413")


def test_body_just_over_limit_is_refused(sender: SlackSender) -> None:
    body = "text=" + "a" * MAX_BODY_BYTES
    headers = sender.sign(body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    resp = sender.raw(body, headers)
    assert resp.status_code == 413


def test_access_log_has_no_query_string(web: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.web.access"):
        requests.get(f"{web}/healthz?token=sekrit", timeout=5)
        deadline = time.monotonic() + 2
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/healthz" in text and "sekrit" not in text


def test_many_concurrent_commands(sender: SlackSender) -> None:
    results: list[int] = []

    def one(i: int) -> None:
        results.append(sender.command(f"n{i}").status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 20


def _tiny_env(slack: SlackStandIn, signing_secret: str) -> dict[str, str]:
    return {"SLACK_SIGNING_SECRET": signing_secret, "SLACK_API_URL": slack.url}


def test_serve_subprocess_stops_cleanly_on_sigterm(
    slack: SlackStandIn, signing_secret: str, bot_process
) -> None:
    proc: BotProcess = bot_process(
        _tiny_env(slack, signing_secret), argv=[sys.executable, "-m", "tests.tiny_bolt_app"]
    )
    resp = SlackSender(proc.url, signing_secret).command("hi")
    assert resp.status_code == 200 and resp.text == "ack: hi"
    assert proc.stop() == 0
    assert "stopped" in proc.output()
    assert "text=hi" not in proc.output()


def test_gunicorn_serves_and_can_be_killed(
    slack: SlackStandIn, signing_secret: str, bot_process
) -> None:
    proc: BotProcess = bot_process(
        _tiny_env(slack, signing_secret), gunicorn=True, app="tests.tiny_bolt_app:create_app()"
    )
    sender = SlackSender(proc.url, signing_secret, standin=slack)
    assert sender.command("via gunicorn").text == "ack: via gunicorn"
    resp = sender.click("addtolib_confirm", "op1")
    key = resp.slack_response_url.rsplit("/", 1)[1]
    slack.wait_for(lambda c: c.key == key, timeout=5)
    assert sender.command("x", timestamp=int(time.time()) - 360).status_code == 401

    def chunks():
        yield b"text="
        for _ in range(17):
            yield b"a" * 65536

    headers = sender.sign("irrelevant")
    resp = requests.post(proc.events_url, data=chunks(), headers=headers, timeout=10)
    assert resp.status_code == 413

    assert proc.kill() is not None and not proc.alive
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proc.url}/healthz", timeout=2)


def test_bot_process_reports_start_failure(tmp_path) -> None:
    proc = BotProcess(
        {},
        argv=[sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
        log_path=tmp_path / "x.log",
        startup_timeout=5,
    )
    with pytest.raises(RuntimeError, match="boom"):
        proc.start()
    assert proc.returncode == 3
    assert json.dumps(proc.output())  # the log stays readable
