"""Signed payloads Slack never sends get a plain 400: no 500, no traceback, nothing done."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import load_settings
from bot.slack.app import build_app
from bot.slack.wiring import Services, build_services
from bot.slack_standin import SlackStandIn
from bot.web import make_threaded_server, make_wsgi_app
from tests.fixtures_bot import MARKETING, USER, Bot, free_assets, stored
from tests.fixtures_slack import SIGNING_SECRET
from tests.fixtures_socket import SocketBot
from tests.slack_requests import SlackSender

REFUSED = "refused a Slack payload"
VIEW = {"id": "V0FORM", "type": "modal", "callback_id": "addtolib_modal", "private_metadata": ""}


def shapes(sender: SlackSender, operation_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> ("command", form fields) or ("interaction", payload): the issue's table and the
    shapes Bolt itself raised on, each naming `operation_id` where its kind can."""
    click = sender.block_actions_payload("addtolib_confirm", operation_id)
    suggestion = {
        "type": "block_suggestion",
        "user": {"id": USER, "team_id": "T0001"},
        "team": {"id": "T0001"},
        "action_id": "library",
        "block_id": "library",
        "value": "Mark",
        "view": VIEW,
    }
    form = {**VIEW, "state": {"values": sender.form_values(MARKETING, "abc123", "C0GENERAL")}}
    preview = {
        "id": "V0PREVIEW",
        "type": "modal",
        "callback_id": "addtolib_modal_confirm",
        "private_metadata": operation_id,
    }
    submission = {"type": "view_submission", "user": {"id": USER}, "view": form}
    shortcut = {
        "type": "shortcut",
        "user": {"id": USER, "team_id": "T0001"},
        "team": {"id": "T0001"},
        "callback_id": "addtolib_shortcut",
    }
    command = {
        "team_id": "T0001",
        "channel_id": "C0GENERAL",
        "user_id": USER,
        "command": "/addtolib",
        "text": f"{MARKETING} abc123",
        "response_url": sender.new_response_url("bad"),
    }

    def edit(base: dict[str, Any], path: str, value: Any = KeyError) -> dict[str, Any]:
        """A copy of `base` with the field at dotted `path` dropped (or set to `value`)."""
        found = copy.deepcopy(base)
        *parents, last = path.split(".")
        node = found
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
        return found

    values = "view.state.values"
    cases = {
        "block_actions, no user": edit(click, "user"),
        "block_actions, string user": edit(click, "user", USER),
        "block_suggestion, no user": edit(suggestion, "user"),
        "block_suggestion, object value": edit(suggestion, "value", {"text": "Mark"}),
        "view_submission, string state value": edit(submission, f"{values}.library", "x"),
        "view_submission, string selected_option": edit(
            submission, f"{values}.library.library.selected_option", MARKETING
        ),
        "view_submission, list assets value": edit(
            submission, f"{values}.assets.assets.value", ["abc123"]
        ),
        "shortcut, no trigger_id": shortcut,
        "message shortcut, no trigger_id": {
            **shortcut,
            "type": "message_action",
            "callback_id": "addtolib_message",
            "channel": {"id": "C0GENERAL"},
            "message": {"text": "abc123"},
        },
        "view_closed, no user": {"type": "view_closed", "view": preview},
        "actions: []": edit(click, "actions", []),
        "view: null": {**submission, "view": None},
        "view without type": {**submission, "view": edit(preview, "type")},
        "numeric user": edit(click, "user", 5),
        "list user": {**submission, "view": preview, "user": [USER]},
    }
    found = {name: ("interaction", payload) for name, payload in cases.items()}
    found["slash command, no channel_id"] = ("command", edit(command, "channel_id"))
    found["slash command, no team_id"] = ("command", edit(command, "team_id"))
    return found


def send(sender: SlackSender, how: str, body: dict[str, Any]) -> requests.Response:
    if how == "command":
        return sender.send_form(body)
    return sender.interaction(body)


@pytest.mark.reliability
def test_each_malformed_shape_is_refused_with_400_and_changes_nothing(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(process=True)  # its log is read
    asset = free_assets(bot.simulator, MARKETING, 1)[0]
    _, operation_id = bot.preview(f'"Marketing Library" {asset}')
    assert operation_id and stored(bot, operation_id).state == "pending"
    uplynk_before = list(bot.simulator.requests)
    slack_before = len(bot.slack.calls)

    cases = shapes(bot.sender, operation_id)
    statuses = {name: send(bot.sender, *case).status_code for name, case in cases.items()}
    assert statuses == dict.fromkeys(cases, 400)

    # Listeners would have queued jobs; a history command's reply (it asks nothing of Uplynk)
    # shows the pool has run on.
    _, key = bot.command("history")
    bot.reply(key)
    assert stored(bot, operation_id).state == "pending"
    assert bot.simulator.requests == uplynk_before
    since = bot.slack.calls[slack_before:]
    assert {c.key for c in since if c.method == "response_url"} == {key}
    assert not [c.method for c in since if c.method.startswith(("views.", "chat."))]
    log = bot.process.output()
    assert "Traceback" not in log
    assert log.count(REFUSED) == len(cases), log
    assert "without user.id" in log and "without trigger_id" in log  # what was missing
    assert "refused a Slack payload: Bolt could not read it (TypeError)" in log  # user: 5
    assert bot.process.alive


@pytest.mark.reliability
def test_socket_mode_refuses_malformed_envelopes_and_keeps_working(socket_bot: SocketBot) -> None:
    bot = socket_bot
    cases = [
        body
        for how, body in shapes(bot.sender, "0" * 32).values()
        if how == "interaction" and body.get("type") in ("block_actions", "view_submission")
    ]
    for body in cases:
        bot.sm.send("interactive", body)
    deadline = time.monotonic() + 10
    while bot.process.output().count(REFUSED) < len(cases):
        assert time.monotonic() < deadline, bot.process.output()
        time.sleep(0.05)
    # An envelope whose payload is not even an object never reaches Bolt: slack_sdk's client
    # logs it and carries on.
    bot.sm.send("interactive", 5, accepts_response_payload=False)  # type: ignore[arg-type]

    ack, key = bot.command("help")
    assert ack.ok
    bot.reply(key)
    assert not [a for a in bot.sm.acks if a.envelope_id != ack.envelope_id]  # refusals: no ack
    log = bot.process.output()
    assert log.count(REFUSED) == len(cases)
    assert "Traceback" not in log.split("Failed to run message listeners")[0]
    assert bot.process.alive


# -- generated payloads, against the app in this process -----------------------------------


@pytest.fixture
def served(bot_env: dict[str, str], slack: SlackStandIn) -> Iterator[tuple[SlackSender, Services]]:
    """The bot's WSGI app served from this process (one server for every example)."""
    services = build_services(load_settings(env=bot_env))
    server = make_threaded_server(make_wsgi_app(build_app(services)), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield SlackSender(url, SIGNING_SECRET, standin=slack), services
    finally:
        server.shutdown()
        server.server_close()
        services.close()


KINDS = [
    "block_actions",
    "block_suggestion",
    "view_submission",
    "view_closed",
    "shortcut",
    "message_action",
    "command",
]
ODD = st.sampled_from([None, 0, 5, -1.5, True, "", "x", [], [1], ["x"], {}, {"id": 5}, {"x": {}}])


def well_formed(sender: SlackSender, kind: str) -> tuple[str, dict[str, Any]]:
    """One payload of `kind` as Slack sends it (its shape, not necessarily a known id)."""
    user = {"id": USER, "team_id": "T0001"}
    team = {"id": "T0001"}
    form = {**VIEW, "state": {"values": sender.form_values(MARKETING, "abc123", "C0GENERAL")}}
    payloads: dict[str, dict[str, Any]] = {
        "block_actions": sender.block_actions_payload("addtolib_cancel", "0" * 32),
        "block_suggestion": {
            "type": "block_suggestion",
            "user": user,
            "team": team,
            "action_id": "library",
            "block_id": "library",
            "value": "Mark",
            "view": VIEW,
        },
        "view_submission": {"type": "view_submission", "user": user, "team": team, "view": form},
        "view_closed": {"type": "view_closed", "user": user, "team": team, "view": VIEW},
        "shortcut": {
            "type": "shortcut",
            "user": user,
            "team": team,
            "callback_id": "addtolib_shortcut",
            "trigger_id": sender.trigger_id(),
        },
        "message_action": {
            "type": "message_action",
            "user": user,
            "team": team,
            "channel": {"id": "C0GENERAL"},
            "callback_id": "addtolib_message",
            "trigger_id": sender.trigger_id(),
            "message": {"type": "message", "text": "abc123"},
        },
        "command": {
            "team_id": "T0001",
            "channel_id": "C0GENERAL",
            "user_id": USER,
            "command": "/addtolib",
            "text": "help",
            "response_url": sender.new_response_url("fuzz"),
        },
    }
    return ("command" if kind == "command" else "interaction"), payloads[kind]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every field's path in a payload, nested ones too."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found += paths(value, (*prefix, key))
    return found


@st.composite
def mangled(draw: st.DrawFn, sender: SlackSender) -> tuple[str, dict[str, Any], bool]:
    """(how, payload, as JSON): a well-formed payload with 1-3 fields dropped or retyped."""
    how, payload = well_formed(sender, draw(st.sampled_from(KINDS)))
    payload = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, 3))):
        every = paths(payload)
        if not every:
            break
        *parents, last = draw(st.sampled_from(every))
        node = payload
        for key in parents:
            node = node[key]
        if draw(st.booleans()):
            del node[last]
        else:
            node[last] = copy.deepcopy(draw(ODD))  # ODD's lists are shared: never edit them
    # A slash command's form holds only strings; sent as JSON its fields can be anything.
    return how, payload, how == "command" and draw(st.booleans())


@pytest.mark.reliability
def test_generated_malformed_payloads_never_get_a_5xx(
    served: tuple[SlackSender, Services], caplog: pytest.LogCaptureFixture
) -> None:
    sender, services = served
    caplog.set_level(logging.INFO)
    statuses: list[int] = []

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(case=mangled(sender))
    def check(case: tuple[str, dict[str, Any], bool]) -> None:
        how, payload, as_json = case
        if as_json:
            body = json.dumps(payload)
            headers = {"Content-Type": "application/json", **sender.sign(body)}
            response = sender.raw(body, headers)
        else:
            response = send(sender, how, payload)
        statuses.append(response.status_code)
        assert response.status_code < 500, (payload, response.text)

    check()
    services.wait_idle(timeout=15)
    assert 400 in statuses and 200 in statuses  # both refusals and well-formed ones were sent
    failures = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not failures, [r.getMessage() for r in failures]
