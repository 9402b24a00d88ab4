"""The App Home's parts: events once per id, Home publishes coalesced, the stand-in's checks,
url_verification, and Socket Mode delivery of app_home_opened (SPEC 14)."""

from __future__ import annotations

import concurrent.futures
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bot.core.delivery.outbox import Outbox, Owed
from bot.core.home import home_opened, home_refresh
from bot.core.seen_events import SeenEvents
from bot.core.store import OperationStore
from bot.core.tables import outbox, slack_events
from bot.slack_standin import SlackStandIn
from bot.slack_standin.events import app_home_opened, new_event_id, send_socket_event
from bot.slack_standin.views import ViewError, validate_home
from tests.fixtures_bot import USER, Bot
from tests.fixtures_socket import SocketBot


def home_rows(store: OperationStore, user: str) -> list[dict]:
    with store.connection(begin=False) as conn:
        query = outbox.select().where(outbox.c.kind == "home", outbox.c.user_id == user)
        return [dict(r) for r in conn.execute(query.order_by(outbox.c.id)).mappings()]


def test_an_event_id_is_first_for_exactly_one_of_8_concurrent_deliveries(store) -> None:
    seen = SeenEvents(store)
    event_id = new_event_id()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        firsts = list(pool.map(lambda _: seen.first(event_id), range(8)))
    assert firsts.count(True) == 1
    assert seen.seen(event_id)
    seen.forget(event_id)  # a delivery that failed before doing anything: the retry counts
    assert seen.first(event_id)


def test_seen_event_ids_are_pruned_after_a_day(store) -> None:
    old = datetime.now(UTC) - timedelta(days=1, minutes=1)
    with store.connection() as conn:
        conn.execute(slack_events.insert().values(event_id="EvOLD", seen_at=old))
    assert SeenEvents(store).first("EvNEW")
    with store.connection(begin=False) as conn:
        ids = set(conn.execute(slack_events.select()).scalars())
    assert ids == {"EvNEW"}


def test_home_refreshes_coalesce_and_only_reach_users_who_opened_their_home(store) -> None:
    box = Outbox(store)
    assert box.add(home_refresh([USER, USER], 10)) == 0  # never opened: no Home to refresh
    assert box.add([home_opened(USER)]) == 1
    assert box.add(home_refresh([USER], 10)) == 0  # one is queued: it renders what is current
    [entry] = box.entries()
    claimed = box.claim(entry.id)
    assert claimed is not None and box.sent(claimed, None, None)
    assert box.add(home_refresh([USER], 10) * 3) == 1  # coalesced into one
    [_, refresh] = home_rows(store, USER)
    assert refresh["due_at"] - refresh["created_at"] >= timedelta(seconds=9)  # at most 1 / 10 s
    assert box.add([home_opened(USER)]) == 0  # opening brings the queued one forward instead
    [_, refresh] = home_rows(store, USER)
    assert refresh["due_at"] <= datetime.now(UTC)
    with pytest.raises(ValueError):
        Owed("home", "home")


def test_the_standin_refuses_a_home_slack_would_refuse() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    validate_home({"type": "home", "blocks": [section] * 100})
    for bad in (
        {"type": "home", "blocks": [section] * 101},
        {"type": "modal", "blocks": [section]},
        {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]},
        {"type": "home", "blocks": [section], "callback_id": "c" * 256},
    ):
        with pytest.raises(ViewError):
            validate_home(bad)
    with SlackStandIn() as slack:
        url = slack.url + "views.publish"
        big = {"type": "home", "blocks": [section] * 101}
        refused = requests.post(url, json={"user_id": USER, "view": big}, timeout=5).json()
        assert refused["error"] == "invalid_arguments"
        small = {"type": "home", "blocks": [section]}
        ok = requests.post(url, json={"user_id": USER, "view": small}, timeout=5).json()
        assert ok["ok"] and slack.views.home(USER)["type"] == "home"


def test_url_verification_is_answered_with_the_challenge(bot: Bot) -> None:
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"})
    response = bot.sender.raw(body, {"Content-Type": "application/json", **bot.sender.sign(body)})
    assert response.status_code == 200 and "c-123" in response.text


def test_socket_mode_delivers_app_home_opened_once_per_event_id(socket_bot: SocketBot) -> None:
    bot = socket_bot
    event_id = new_event_id()
    first = send_socket_event(bot.sm, app_home_opened(USER), event_id=event_id)
    assert bot.sm.wait_ack(first.envelope_id).ok
    call = bot.slack.wait_for(
        lambda c: c.method == "views.publish" and c.payload.get("user_id") == USER, timeout=15
    )
    assert call.ok and call.payload["view"]["type"] == "home"
    again = send_socket_event(bot.sm, app_home_opened(USER), event_id=event_id, retry_num=1)
    assert bot.sm.wait_ack(again.envelope_id).ok
    # Another user's event (a new id) is handled; the repeated one was not.
    other = send_socket_event(bot.sm, app_home_opened("U0OTHER"), retry_num=1)
    assert bot.sm.wait_ack(other.envelope_id).ok
    bot.slack.wait_for(
        lambda c: c.method == "views.publish" and c.payload.get("user_id") == "U0OTHER",
        timeout=15,
    )
    publishes = [c for c in bot.slack.calls_of("views.publish") if c.payload["user_id"] == USER]
    assert len(publishes) == 1
