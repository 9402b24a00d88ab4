"""Forged, replayed and malformed requests are refused before any listener runs."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlencode

import pytest
import requests

from tests.fixtures_bot import MARKETING, Bot, free_assets, stored
from tests.fixtures_slack import SIGNING_SECRET
from tests.slack_requests import SlackSender

FORM = "application/x-www-form-urlencoded"
SIX_MINUTES = 6 * 60


def command_body(bot: Bot, text: str) -> str:
    """A slash command body exactly as SlackSender.command builds it."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": "T0001",
        "team_domain": "demo",
        "channel_id": "C0GENERAL",
        "channel_name": "general",
        "user_id": "U0USER",
        "user_name": "alice",
        "command": "/addtolib",
        "text": text,
        "api_app_id": "A0ADDTOLIB",
        "is_enterprise_install": "false",
        "response_url": bot.sender.new_response_url("forged"),
        "trigger_id": bot.sender.trigger_id(),
    }
    return urlencode(fields)


def signed(sender: SlackSender, body: str, timestamp: int | None = None, **extra: str):
    return {"Content-Type": FORM, **sender.sign(body, timestamp), **extra}


def short_send(bot: Bot, body: bytes, headers: dict[str, str]) -> int:
    """Announce the full Content-Length, send half, close our side: the status answered, or -1
    when the server closes without answering (it never had a whole request)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body[: len(body) // 2]
    with socket.create_connection(("127.0.0.1", bot.process.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return int(answer.split(b"\r\n", 1)[0].split()[1]) if answer else -1


@pytest.mark.reliability
def test_a_stream_of_forged_and_malformed_requests_is_refused(bot: Bot) -> None:
    sender = bot.sender
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    body = command_body(bot, f'"Marketing Library" {asset}')
    click = urlencode(
        {"payload": json.dumps(sender.block_actions_payload("addtolib_confirm", "0" * 32))}
    )
    now = int(time.time())
    forger = SlackSender(bot.process.url, SIGNING_SECRET[::-1])
    valid = signed(sender, body)
    other_body = command_body(bot, f"{MARKETING} {asset}")

    refused_401: dict[str, tuple[str | bytes, dict[str, str]]] = {
        "bad signature": (body, signed(forger, body)),
        "bad signature on a click": (click, signed(forger, click)),
        "stale timestamp": (body, signed(sender, body, now - SIX_MINUTES)),
        "future timestamp": (body, signed(sender, body, now + SIX_MINUTES)),
        "no signature headers": (body, {"Content-Type": FORM}),
        "no signature": (body, {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(now)}),
        "no timestamp": (
            body,
            {"Content-Type": FORM, "X-Slack-Signature": valid["X-Slack-Signature"]},
        ),
        "empty signature": (body, {**valid, "X-Slack-Signature": ""}),
        "signature without v0=": (
            body,
            {**valid, "X-Slack-Signature": valid["X-Slack-Signature"][3:]},
        ),
        "truncated body": (body[: len(body) // 2], valid),
        "non-numeric timestamp": (body, {**valid, "X-Slack-Request-Timestamp": "soon"}),
        "float timestamp": (body, {**valid, "X-Slack-Request-Timestamp": f"{now}.5"}),
        "replayed signature, other body": (other_body, valid),
        "replayed signature, other click": (click, valid),
        "forged retry": (body, {**signed(forger, body), "X-Slack-Retry-Num": "1"}),
    }
    malformed: dict[str, tuple[str | bytes, dict[str, str], int]] = {
        "signed, wrong content type": (body, {**valid, "Content-Type": "text/plain"}, 415),
        "no content type": (body, {k: v for k, v in valid.items() if k != "Content-Type"}, 415),
        "signed form sent as JSON": (body, {**valid, "Content-Type": "application/json"}, 400),
        "unsigned broken JSON": ("{not json", {"Content-Type": "application/json"}, 400),
        "unsigned broken payload": ("payload=%7Bnot+json", {"Content-Type": FORM}, 400),
        "unsigned binary": (bytes(range(256)), {"Content-Type": FORM}, 400),
        # Just over the app's 1 MiB; far larger ones the server refuses unread (test_web).
        "huge body": ("text=" + "a" * (1024 * 1024), signed(sender, "text="), 413),
    }
    cases = {name: (*case, 401) for name, case in refused_401.items()} | malformed
    statuses: dict[str, int] = {}
    for name, (data, headers, _) in cases.items():
        try:
            statuses[name] = sender.raw(data, headers).status_code
        except requests.ConnectionError:
            statuses[name] = -1  # the server dropped the connection instead of answering
    statuses["short read"] = short_send(bot, body.encode(), valid)
    # Half a body is not a request: the server drops it, and no handler ever sees it.
    expected = {name: status for name, (*_, status) in cases.items()} | {"short read": -1}
    assert statuses == expected

    time.sleep(0.5)  # anything wrongly dispatched would have reached a fake by now
    assert bot.simulator.requests == []
    assert bot.slack.calls == []

    # The server still serves a genuine command, and only that reached Slack and Uplynk.
    call, operation_id = bot.preview(f'"Marketing Library" {asset}')
    assert operation_id and stored(bot, operation_id).state == "pending"
    assert {c.key for c in bot.slack.calls_of("response_url")} == {call.key}
    assert not [c for c in bot.slack.calls if c.method.startswith("chat.")]
    assert bot.process.alive
