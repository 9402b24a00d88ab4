"""Pytest fixtures for Socket Mode end to end: `python -m bot socket` on the stand-in."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.simulator import UplynkSimulator
from bot.slack_standin import SlackStandIn
from bot.slack_standin.socket_mode import Ack, Envelope, SocketModeStandIn
from tests.bot_process import BotProcess
from tests.fixtures_bot import USER, Bot
from tests.fixtures_slack import SIGNING_SECRET
from tests.slack_requests import SlackSender, command_fields

APP_TOKEN = "xapp-1-A0ADDTOLIB-1-socketmodetest"


@dataclass
class SocketBot(Bot):
    """A running `python -m bot socket`: Slack's requests arrive as envelopes on its WebSocket."""

    socket: SocketModeStandIn | None = None

    @property
    def sm(self) -> SocketModeStandIn:
        assert self.socket is not None
        return self.socket

    def command_payload(
        self, text: str, user_id: str = USER, channel_id: str = "C0GENERAL"
    ) -> tuple[dict[str, Any], str]:
        """A slash_commands envelope's payload (the HTTP form's fields) and its response_url key."""
        response_url = self.sender.new_response_url("cmd")
        payload = command_fields(
            text,
            response_url=response_url,
            trigger_id=self.sender.trigger_id(),
            user_id=user_id,
            channel_id=channel_id,
        )
        return payload, response_url.rsplit("/", 1)[-1]

    def command(self, text: str, user_id: str = USER, **kwargs: Any) -> tuple[Ack, str]:  # type: ignore[override]
        """Deliver /addtolib as an envelope; returns (its ack, response_url key)."""
        payload, key = self.command_payload(text, user_id, **kwargs)
        envelope = self.sm.send("slash_commands", payload)
        return self.sm.wait_ack(envelope.envelope_id), key

    def click_envelope(
        self, action_id: str, value: str, user_id: str = USER
    ) -> tuple[Envelope, str]:
        payload = self.sender.block_actions_payload(action_id, value, user_id=user_id)
        envelope = self.sm.send("interactive", payload)
        return envelope, payload["response_url"].rsplit("/", 1)[-1]

    def click(
        self, action_id: str, value: str, user_id: str = USER, **kwargs: Any
    ) -> tuple[Ack, str]:  # type: ignore[override]
        envelope, key = self.click_envelope(action_id, value, user_id)
        return self.sm.wait_ack(envelope.envelope_id), key

    def interaction(self, payload: dict[str, Any]) -> Ack:
        envelope = self.sm.send("interactive", payload)
        return self.sm.wait_ack(envelope.envelope_id)


@pytest.fixture
def start_socket_bot(
    bot_process: Callable[..., BotProcess],
    bot_env: dict[str, str],
    simulator: UplynkSimulator,
    slack: SlackStandIn,
) -> Iterator[Callable[..., SocketBot]]:
    """Factory: start_socket_bot(**env overrides) -> a `python -m bot socket` that is connected."""
    socket = slack.socket_mode.enable(APP_TOKEN)
    started: list[BotProcess] = []

    def start(**overrides: str) -> SocketBot:
        env = {**bot_env, "SLACK_APP_TOKEN": APP_TOKEN, **overrides}
        before = len(socket.connections)
        process = bot_process(
            env,
            argv=[sys.executable, "-m", "bot", "socket"],
            ready=lambda: len(socket.connections) > before,
        )
        started.append(process)
        sender = SlackSender("http://unused.invalid", SIGNING_SECRET, standin=slack)
        return SocketBot(process, slack, simulator, sender, env, socket=socket)

    yield start
    for process in started:
        process.kill()  # at once: tests of shutdown stop their bot themselves


@pytest.fixture
def socket_bot(start_socket_bot: Callable[..., SocketBot]) -> SocketBot:
    return start_socket_bot()
