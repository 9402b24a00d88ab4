"""The stand-in's per-channel posting limit and its outage mode, through slack_sdk's WebClient."""

from __future__ import annotations

import time

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.delivery.worker import delivery_client
from bot.slack_standin import SlackStandIn


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return delivery_client("xoxb-test", slack.url)  # no retry handler: we see every answer


def test_posts_beyond_the_burst_get_429_with_retry_after(
    slack: SlackStandIn, client: WebClient
) -> None:
    slack.limit_posts(rate=1.0, burst=5)
    for n in range(5):
        client.chat_postMessage(channel="C1", text=f"burst {n}")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="one too many")
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "1"
    assert refused.value.response["error"] == "ratelimited"
    client.chat_postMessage(channel="C2", text="another channel has its own bucket")
    client.chat_update(channel="C1", ts=slack.calls_of("chat.postMessage")[0].ts, text="edit")
    time.sleep(1.05)  # one more token
    client.chat_postMessage(channel="C1", text="after a second")
    assert [c.error for c in slack.calls_of("chat.postMessage")].count("ratelimited") == 1

    slack.limit_posts(None)
    for n in range(8):
        client.chat_postMessage(channel="C1", text=f"unlimited {n}")


def test_outage_answers_503_until_it_ends(slack: SlackStandIn, client: WebClient) -> None:
    slack.outage(0.5)
    with pytest.raises(SlackApiError) as down:
        client.chat_postMessage(channel="C1", text="during")
    assert down.value.response.status_code == 503
    assert slack.calls_of("chat.postMessage")[-1].error == "service_unavailable"
    assert slack.messages_in("C1") == []
    time.sleep(0.6)
    assert client.chat_postMessage(channel="C1", text="after")["ok"]


def test_limit_and_outage_can_be_set_over_http(slack: SlackStandIn, client: WebClient) -> None:
    assert requests.post(f"{slack.base}/_standin/outage", json={"seconds": 30}).ok
    with pytest.raises(SlackApiError):
        client.auth_test()
    assert requests.post(f"{slack.base}/_standin/outage", json={"seconds": 0}).ok
    assert requests.post(f"{slack.base}/_standin/limit", json={"rate": 1, "burst": 1}).ok
    client.chat_postMessage(channel="C1", text="one")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="two")
    bad = requests.post(f"{slack.base}/_standin/outage", json={"minutes": 1})
    assert bad.status_code == 400 and "bad options" in bad.json()["error"]
