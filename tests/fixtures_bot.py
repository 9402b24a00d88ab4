"""Pytest fixtures for end-to-end tests: the real bot server wired to the simulator and stand-in."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_settings
from bot.core.operation import Operation
from bot.core.store import OperationStore
from bot.server import start_delivery, start_heartbeat, start_schedule
from bot.simulator import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS, UplynkSimulator
from bot.slack.app import build_app
from bot.slack.wiring import Services, build_services
from bot.slack_standin import SlackCall, SlackStandIn
from bot.web import WebServer, make_threaded_server, make_wsgi_app
from tests.bot_process import BotProcess
from tests.fixtures_slack import SIGNING_SECRET
from tests.slack_requests import SlackSender, button_value
from tests.slack_requests import ack_text as ack_text  # the tests' import of it

MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
ARCHIVE = DEMO_LIBRARY_IDS["Marketing Library Archive"]
AD_BREAKS = DEMO_LIBRARY_IDS["Ad Breaks"]
SPORTS = DEMO_LIBRARY_IDS["Sports Highlights"]
USER = "U0USER"
OTHER = "U0OTHER"
ADMIN = "U0ADMIN"
NOTIFY = "C0NOTIFY"

POLICY = f"""
admins = ["{ADMIN}"]

[[allow]]
libraries = ["{MARKETING}", "{ARCHIVE}", "{AD_BREAKS}"]
users = ["{USER}", "{OTHER}"]

[[allow]]
libraries = ["*"]
usergroups = ["S0EDITORS"]
channels = ["C0EDIT"]
"""


#: The lead who approves Ad Breaks in PROTECTED_POLICY.
LEAD = "U0LEAD"
#: USER may add to Marketing and Ad Breaks; Ad Breaks needs one approval by LEAD or an admin.
PROTECTED_POLICY = f"""
admins = ["{ADMIN}"]

[[allow]]
libraries = ["{MARKETING}", "{AD_BREAKS}"]
users = ["{USER}"]

[[protect]]
libraries = ["{AD_BREAKS}"]
approvers = ["{LEAD}"]
"""


def free_assets(simulator: UplynkSimulator, library_id: str, count: int) -> list[str]:
    """Demo assets that exist and are not yet in `library_id`."""
    held = simulator.catalogue.library_assets(library_id)
    found = [a for a in DEMO_ASSET_IDS if a not in held][:count]
    assert len(found) == count, "the demo catalogue is too small for this test"
    return found


class InProcessBot:
    """The bot served from the test's own process, wired as `python -m bot serve` wires it
    (bot.server.start_http): services, heartbeat, delivery, schedules, the WSGI app on a
    threaded server. No process start-up to pay for; what only a process shows (its log,
    signals, a crash, /metrics of its own) needs ``start_bot(process=True)``."""

    def __init__(self, env: dict[str, str], host: str = "127.0.0.1") -> None:
        # Like the subprocess: the environment, then the test's settings (no .env read).
        settings = load_settings(env={**os.environ, **env}, dotenv=False)
        self.host = host
        self.services: Services = build_services(settings)
        try:
            start_heartbeat(self.services)
            start_delivery(self.services)
            start_schedule(self.services)
            wsgi = make_wsgi_app(build_app(self.services), ready=self.services.not_ready)
            self.server: WebServer = make_threaded_server(
                wsgi,
                host,
                0,
                threads=settings.web_threads,
                request_timeout=settings.request_timeout,
            )
        except BaseException:
            self.services.close()
            raise
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def alive(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving, let the jobs in flight finish their batch, and close the services."""
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.server_close()
        self.services.stop_taking_work()
        self.services.wait_idle(timeout=5)
        self.services.close()


@dataclass
class Bot:
    """A running bot server plus the two fakes it talks to, and helpers to drive it."""

    process: BotProcess | InProcessBot
    slack: SlackStandIn
    simulator: UplynkSimulator
    sender: SlackSender
    env: dict[str, str]
    seen: list[str] = field(default_factory=list)

    def command(self, text: str, user_id: str = USER, **kwargs: Any):
        """Send a signed /addtolib; returns (HTTP response, response_url key)."""
        response = self.sender.command(text, user_id=user_id, **kwargs)
        return response, response.slack_response_url.rsplit("/", 1)[-1]

    def click(self, action_id: str, value: str, user_id: str = USER, **kwargs: Any):
        response = self.sender.click(action_id, value, user_id=user_id, **kwargs)
        assert response.status_code == 200, response.text
        return response, response.slack_response_url.rsplit("/", 1)[-1]

    def reply(self, key: str, contains: str = "", timeout: float = 15) -> SlackCall:
        """The first response_url post on `key` whose text or blocks contain `contains`."""
        return self.slack.wait_for(
            lambda c: c.method == "response_url" and c.key == key and contains in dump(c),
            timeout=timeout,
        )

    def replies(self, key: str) -> list[SlackCall]:
        return [c for c in self.slack.calls_of("response_url") if c.key == key]

    def preview(self, text: str, user_id: str = USER, **kwargs: Any) -> tuple[SlackCall, str]:
        """Run a command and wait for its preview; returns (call, operation id or '')."""
        response, key = self.command(text, user_id=user_id, **kwargs)
        assert response.status_code == 200, response.text
        call = self.slack.wait_for(
            lambda c: c.key == key and ("addtolib_" in dump(c) or ":warning:" in dump(c)),
            timeout=15,
        )
        return call, button_value(call, "addtolib_confirm") or ""

    def summary(self, operation_id: str, timeout: float = 20) -> SlackCall:
        return self.slack.wait_for(
            lambda c: (
                c.method == "chat.postMessage"
                and operation_id in dump(c)
                and c.payload.get("channel") != NOTIFY
            ),
            timeout=timeout,
        )


def dump(call: SlackCall) -> str:
    return json.dumps(call.payload)


def patches(simulator: UplynkSimulator) -> list[Any]:
    """The add-assets (PATCH) requests the simulator received."""
    return [r for r in simulator.requests if r.call == "add"]


def stored(bot: Bot, operation_id: str | None = None, user_id: str | None = None) -> Operation:
    """An operation as the bot stored it: by id, else the newest of `user_id`."""
    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        found = store.get(operation_id) if operation_id else store.recent(user_id, limit=1)[0]
    finally:
        store.dispose()
    assert found is not None, f"operation {operation_id} not in the store"
    return found


def titled(simulator: UplynkSimulator, asset_id: str) -> str:
    """How messages show an asset (SPEC 3.3): its Uplynk title, its id beside it."""
    return f"{simulator.catalogue.assets[asset_id].desc} (`{asset_id}`)"


def text_of(call: SlackCall) -> str:
    """Every text in a message's blocks, joined (for assertions on what a user reads)."""
    body = blocks_text(call.payload.get("blocks"))
    return "\n".join([call.payload.get("text") or "", *([body] if body else [])])


def texts(node: Any, parsed_only: bool = False) -> list[str]:
    """Every `text` string in a payload, blocks or a view, in order.

    parsed_only: only what Slack parses for mentions and markup (a message's fallback `text`
    and mrkdwn objects), leaving out plain_text objects, which Slack shows as they are.
    """
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("text"), str) and not (
            parsed_only and node.get("type") == "plain_text"
        ):
            found.append(node["text"])
        for value in node.values():
            found += texts(value, parsed_only)
    elif isinstance(node, list):
        for value in node:
            found += texts(value, parsed_only)
    return found


def blocks_text(blocks: Any) -> str:
    """Every text in a list of blocks (a message's or a view's), joined."""
    return "\n".join(texts(blocks or []))


#: Pacing and back-off for test bots (production: 1 post a second, 1 s first back-off for
#: Slack posts, 0.5 s for Uplynk retries).
FAST_DELIVERY = {
    "ADDTOLIB_POST_RATE": "20",
    "ADDTOLIB_DELIVERY_BACKOFF": "0.1",
    "UPLYNK_BACKOFF": "0.05",
}

OPERATION_ID = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def bot_env(
    simulator: UplynkSimulator, slack: SlackStandIn, migrated_database_url: str, policy_file: Path
) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-test-token-e2e",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.url,
        "UPLYNK_API_URL": simulator.url,
        "UPLYNK_USER_ID": simulator.user_id,
        "UPLYNK_API_KEY": simulator.api_key,
        "DATABASE_URL": migrated_database_url,
        "ADDTOLIB_POLICY": str(policy_file),
        "ADDTOLIB_NOTIFY_CHANNEL": NOTIFY,
        # Time as a parameter: the stand-in has no post limit unless a test sets one, so the
        # bot's own pacing and retries run 10-20x faster than in production.
        **FAST_DELIVERY,
    }


@pytest.fixture
def start_bot(
    bot_process: Callable[..., BotProcess],
    bot_env: dict[str, str],
    simulator: UplynkSimulator,
    slack: SlackStandIn,
) -> Iterator[Callable[..., Bot]]:
    """Factory: start_bot(**env overrides, gunicorn=False, procfile=False, process=False)
    -> a running Bot: served in this process, or (process, gunicorn or procfile) a subprocess."""

    started: list[BotProcess | InProcessBot] = []

    def start(
        gunicorn: bool = False, procfile: bool = False, process: bool = False, **overrides: str
    ) -> Bot:
        env = {**bot_env, **overrides}
        server: BotProcess | InProcessBot
        if process or gunicorn or procfile:
            server = bot_process(env, gunicorn=gunicorn, procfile=procfile)
        else:
            server = InProcessBot(env)
        started.append(server)
        sender = SlackSender(server.url, SIGNING_SECRET, standin=slack)
        return Bot(server, slack, simulator, sender, env)

    yield start
    # Stop the bots before the stand-in and simulator: subprocesses at once (SIGKILL; tests of
    # shutdown stop their bot themselves, a graceful stop here would only wait for leftovers).
    for server in started:
        if isinstance(server, InProcessBot):
            server.stop()
        else:
            server.kill()


@pytest.fixture
def bot(start_bot: Callable[..., Bot]) -> Bot:
    """A running bot (served in this process) against the simulator and the Slack stand-in."""
    return start_bot()
