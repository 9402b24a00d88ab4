"""The stand-in's Socket Mode: apps.connections.open, and a WebSocket as strict as Slack's."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from urllib.parse import urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack_standin import SlackStandIn
from bot.slack_standin.socket_mode import SocketModeStandIn
from bot.slack_standin.websocket import accept_key

APP_TOKEN = "xapp-1-A0-1-standin"


class RawClient:
    """A hand-rolled WebSocket client, to send exactly the frames a test wants."""

    def __init__(self, url: str, *, key: str | None = None, version: str = "13") -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
            ).encode()
        )
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split()[1])
        self.headers: dict[str, str] = {}
        while line := self.file.readline().strip():
            name, _, value = line.decode().partition(":")
            self.headers[name.lower()] = value.strip()

    def frame(self, opcode: int, data: bytes, *, fin: bool = True, masked: bool = True) -> None:
        head = bytes([(0x80 if fin else 0) | opcode])
        mask = os.urandom(4) if masked else b""
        n = len(data)
        bit = 0x80 if masked else 0
        if n <= 125:
            head += bytes([bit | n])
        else:
            head += bytes([bit | 126]) + struct.pack("!H", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data)) if masked else data
        self.sock.sendall(head + mask + body)

    def read(self) -> tuple[int, bytes]:
        b1, b2 = self.file.read(2)
        n = b2 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.file.read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.file.read(8))
        assert not b2 & 0x80, "server frames are never masked"
        return b1 & 0x0F, self.file.read(n)

    def json(self) -> dict:
        opcode, data = self.read()
        assert opcode == 0x1
        return json.loads(data)

    def close_code(self) -> int:
        opcode, data = self.read()
        assert opcode == 0x8, (opcode, data)
        return struct.unpack("!H", data[:2])[0]


@pytest.fixture
def sm(slack: SlackStandIn) -> SocketModeStandIn:
    return slack.socket_mode.enable(APP_TOKEN)


def open_url(slack: SlackStandIn, token: str = APP_TOKEN) -> str:
    return WebClient(base_url=slack.url).apps_connections_open(app_token=token)["url"]


def test_connections_open_takes_only_the_app_token(slack: SlackStandIn, sm) -> None:
    assert open_url(slack).startswith(f"ws://127.0.0.1:{sm.port}/link/?ticket=")
    for token, error in [
        ("xapp-1-A0-1-wrong", "invalid_auth"),
        ("xoxb-a-bot-token", "not_allowed_token_type"),
        ("", "not_authed"),
    ]:
        with pytest.raises(SlackApiError) as refused:
            WebClient(base_url=slack.url).apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error
    assert [c.error for c in slack.calls_of("apps.connections.open")] == [
        None,
        "invalid_auth",
        "not_allowed_token_type",
        "not_authed",
    ]


def test_hello_envelope_and_a_fragmented_masked_ack(slack: SlackStandIn, sm) -> None:
    client = RawClient(open_url(slack))
    assert client.status == 101
    assert client.headers["sec-websocket-accept"] == accept_key(client.key)
    hello = client.json()
    assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == sm.app_id

    client.frame(0x9, b"are you there")  # ping -> pong with the same payload
    assert client.read() == (0xA, b"are you there")

    envelope = sm.send("slash_commands", {"text": "hi"})
    sent = client.json()
    assert sent["envelope_id"] == envelope.envelope_id and sent["accepts_response_payload"]
    ack = json.dumps({"envelope_id": envelope.envelope_id, "payload": {"text": "é ok"}}).encode()
    client.frame(0x1, ack[:10], fin=False)
    client.frame(0x9, b"in between")  # control frames may come between fragments
    assert client.read() == (0xA, b"in between")
    client.frame(0x0, ack[10:20], fin=False)
    client.frame(0x0, ack[20:])
    got = sm.wait_ack(envelope.envelope_id)
    assert got.ok and got.payload == {"text": "é ok"} and got.latency < 3

    client.frame(0x8, struct.pack("!H", 1000) + b"bye")
    assert client.close_code() == 1000


def test_acks_slack_would_not_take_are_recorded_as_refused(slack: SlackStandIn, sm) -> None:
    client = RawClient(open_url(slack))
    client.json()
    click = sm.send("interactive", {"type": "block_actions"})
    slash = sm.send("slash_commands", {"text": "x"})
    client.json(), client.json()
    too_many = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    for message in [
        {"envelope_id": "never-sent"},
        {"envelope_id": click.envelope_id, "payload": {"text": "no payload here"}},
        {"envelope_id": slash.envelope_id, "payload": {"blocks": [too_many] * 51}},
        "not an object",
    ]:
        client.frame(0x1, json.dumps(message).encode())
    client.frame(0x1, json.dumps({"envelope_id": slash.envelope_id}).encode())
    client.frame(0x1, json.dumps({"envelope_id": slash.envelope_id}).encode())
    sm.wait_ack(slash.envelope_id, count=3)
    assert [a.error for a in sm.acks] == [
        "unknown_envelope",
        "payload_not_accepted",
        "invalid_blocks",
        "invalid_ack",
        None,
        "duplicate_ack",
    ]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"opcode": 0x1, "data": b"{}", "masked": False}, 1002),  # clients must mask
        ({"opcode": 0x2, "data": b"\x00"}, 1003),  # binary
        ({"opcode": 0x1, "data": b"\xff\xfe"}, 1007),  # not UTF-8
        ({"opcode": 0x0, "data": b"x"}, 1002),  # continuation of nothing
        ({"opcode": 0x9, "data": b"x", "fin": False}, 1002),  # fragmented control frame
        ({"opcode": 0x3, "data": b""}, 1002),  # reserved opcode
    ],
)
def test_frames_that_break_rfc_6455_fail_the_connection(slack, sm, frame, code) -> None:
    client = RawClient(open_url(slack))
    client.json()
    client.frame(**frame)
    assert client.close_code() == code
    assert client.file.read(1) == b""  # and the server hangs up
    assert sm.wait_closed(1).protocol_error.startswith(str(code))


def test_a_ticket_works_once_and_a_bad_handshake_is_refused(slack: SlackStandIn, sm) -> None:
    url = open_url(slack)
    assert RawClient(url).status == 101
    assert RawClient(url).status == 401  # used
    base = url.split("?")[0]
    assert RawClient(f"{base}?ticket=made-up").status == 401
    assert RawClient(open_url(slack), version="8").status == 426
    assert RawClient(open_url(slack), key="c2hvcnQ=").status == 400


def test_disconnect_asks_the_app_to_reconnect_then_closes(slack: SlackStandIn, sm) -> None:
    client = RawClient(open_url(slack))
    client.json()
    sm.disconnect("refresh_requested", close_after=0.1)
    assert client.json() == {
        "type": "disconnect",
        "reason": "refresh_requested",
        "debug_info": {"host": "applink-standin"},
    }
    assert client.close_code() == 1001
    client.frame(0x8, struct.pack("!H", 1001))
    assert client.file.read(1) == b""
