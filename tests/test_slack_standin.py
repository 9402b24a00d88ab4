"""The Slack Web API stand-in, driven by slack_sdk's real WebClient and WebhookClient."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, SectionBlock
from slack_sdk.webhook import WebhookClient

from bot.slack_standin import SlackStandIn
from bot.slack_standin.server import main


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.url)


def test_url_shape(slack: SlackStandIn) -> None:
    assert slack.url.startswith("http://127.0.0.1:")
    assert slack.url.endswith("/api/")
    assert slack.response_url("k").endswith("/response/k")


def test_auth_test(client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == "UBOT"
    assert resp["bot_id"] == "BBOT"
    assert resp["team_id"] == "T0001"
    assert resp["team"] == "Demo"


def test_post_message_increasing_ts_and_blocks_recorded(
    slack: SlackStandIn, client: WebClient
) -> None:
    blocks = [
        SectionBlock(text="*hello*"),
        ActionsBlock(elements=[ButtonElement(text="Go", action_id="addtolib_confirm", value="x")]),
    ]
    tss = []
    for i in range(3):
        resp = client.chat_postMessage(channel="C1", text=f"m{i}", blocks=blocks)
        assert resp["ok"] and resp["channel"] == "C1"
        assert resp["message"]["text"] == f"m{i}"
        tss.append(resp["ts"])
    assert tss == sorted(tss) and len(set(tss)) == 3
    assert all(len(ts.split(".")[1]) == 6 for ts in tss)
    calls = slack.calls_of("chat.postMessage")
    assert [c.ts for c in calls] == tss
    assert isinstance(calls[0].payload["blocks"], list)
    assert calls[0].blocks[1]["elements"][0]["action_id"] == "addtolib_confirm"
    assert "token" not in calls[0].payload and calls[0].token == "xoxb-test"
    assert [m["text"] for m in slack.messages_in("C1")] == ["m0", "m1", "m2"]


def test_form_encoded_blocks_are_decoded(slack: SlackStandIn) -> None:
    resp = requests.post(
        slack.url + "chat.postEphemeral",
        data={"channel": "C1", "user": "U1", "text": "t", "blocks": '[{"type":"divider"}]'},
        headers={"Authorization": "Bearer xoxb-test"},
        timeout=5,
    )
    body = resp.json()
    assert body["ok"] and body["message_ts"]
    call = slack.calls_of("chat.postEphemeral")[0]
    assert call.payload["blocks"] == [{"type": "divider"}]
    assert call.ts == body["message_ts"]


def test_update_delete_thread(slack: SlackStandIn, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    client.chat_postMessage(channel="C1", text="reply", thread_ts=parent)
    upd = client.chat_update(channel="C1", ts=parent, text="edited")
    assert upd["ts"] == parent and upd["channel"] == "C1"
    assert slack.message("C1", parent)["text"] == "edited"
    assert [m["text"] for m in slack.messages_in("C1", thread_ts=parent)] == ["reply"]
    client.chat_delete(channel="C1", ts=parent)
    assert slack.message("C1", parent) is None
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_fail_then_recover(slack: SlackStandIn, client: WebClient) -> None:
    slack.fail("chat.postMessage", "not_in_channel", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel="C1", text="x")
        assert err.value.response["error"] == "not_in_channel"
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    calls = slack.calls_of("chat.postMessage")
    assert [c.error for c in calls] == ["not_in_channel", "not_in_channel", None]
    assert len(slack.calls_of("chat.postMessage", ok=True)) == 1
    assert len(slack.messages_in("C1")) == 1


SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
EMPTY_SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": ""}}


@pytest.mark.parametrize(
    "blocks", [[SECTION] * 51, [EMPTY_SECTION]], ids=["51 blocks", "an empty section"]
)
def test_invalid_blocks_refused_over_http_as_slack_does(
    slack: SlackStandIn, client: WebClient, blocks: list[dict]
) -> None:
    posted = client.chat_postMessage(channel="C1", text="x", blocks=[SECTION])
    calls = {
        "chat.postMessage": lambda: client.chat_postMessage(channel="C1", text="x", blocks=blocks),
        "chat.postEphemeral": lambda: client.chat_postEphemeral(
            channel="C1", user="U0USER", text="x", blocks=blocks
        ),
        "chat.update": lambda: client.chat_update(
            channel="C1", ts=posted["ts"], text="x", blocks=blocks
        ),
    }
    for method, call in calls.items():
        with pytest.raises(SlackApiError) as err:
            call()
        assert err.value.response["error"] == "invalid_blocks", method
    assert slack.message("C1", posted["ts"])["blocks"] == [SECTION]  # the update changed nothing

    # A response_url answers HTTP 400 and the message is not shown.
    hook = WebhookClient(slack.response_url("bad"))
    refused = hook.send(text="x", blocks=blocks)
    assert (refused.status_code, refused.body) == (400, "invalid_blocks")
    assert [c.error for c in slack.calls_of("response_url")] == ["invalid_blocks"]
    assert slack.responses("bad") == []

    # A modal: 100 blocks at most; views.open answers invalid_arguments and uses no trigger.
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Add assets"}}
    trigger = slack.new_trigger()
    too_many = [SECTION] * 101 if len(blocks) > 1 else blocks
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger, view={**view, "blocks": too_many})
    assert err.value.response["error"] == "invalid_arguments"
    assert client.views_open(trigger_id=trigger, view={**view, "blocks": [SECTION] * 100})["ok"]


def test_the_largest_valid_message_is_accepted(client: WebClient) -> None:
    assert client.chat_postMessage(channel="C1", text="x", blocks=[SECTION] * 50)["ok"]


def test_usergroups_and_conversations_open(slack: SlackStandIn, client: WebClient) -> None:
    assert client.usergroups_users_list(usergroup="S0EDITORS")["users"] == ["U0EDITOR"]
    with pytest.raises(SlackApiError) as err:
        client.usergroups_users_list(usergroup="S0NOPE")
    assert err.value.response["error"] == "no_such_subteam"
    assert client.conversations_open(users="U0USER")["channel"]["id"] == "DU0USER"
    assert client.api_call("reactions.add", params={"name": "x"})["ok"]


def test_token_checked_when_configured() -> None:
    with SlackStandIn(token="xoxb-right") as standin:
        assert WebClient(token="xoxb-right", base_url=standin.url).auth_test()["ok"]
        for token in ("xoxb-wrong", None):
            with pytest.raises(SlackApiError) as err:
                WebClient(token=token, base_url=standin.url).auth_test()
            assert err.value.response["error"] == "invalid_auth"


def test_response_url_five_per_key(slack: SlackStandIn) -> None:
    hook = WebhookClient(slack.response_url("abc"))
    statuses = [hook.send(text=f"n{i}").status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    assert hook.send(text="again").body == "used_url"
    assert [c.payload["text"] for c in slack.responses("abc")] == [f"n{i}" for i in range(5)]
    rejected = [c for c in slack.calls_of("response_url") if c.rejected]
    assert len(rejected) == 2 and {c.error for c in rejected} == {"used_url"}
    assert WebhookClient(slack.response_url("other")).send(text="x").status_code == 200


def test_response_url_fail_and_blocks(slack: SlackStandIn) -> None:
    slack.fail("response_url", "expired_url")
    hook = WebhookClient(slack.response_url("k"))
    assert hook.send(text="x").status_code == 404
    resp = hook.send(text="y", blocks=[SectionBlock(text="hi")], replace_original=True)
    assert resp.status_code == 200
    call = slack.responses("k")[0]
    assert call.payload["blocks"][0]["type"] == "section"
    assert call.payload["replace_original"] is True


def test_wait_for_and_clear(slack: SlackStandIn, client: WebClient) -> None:
    threading.Timer(0.2, lambda: client.chat_postMessage(channel="C9", text="late")).start()
    start = time.monotonic()
    call = slack.wait_for(lambda c: c.method == "chat.postMessage" and c.channel == "C9", 5)
    assert call.text == "late" and time.monotonic() - start < 3
    assert slack.wait_for("chat.postMessage").ts == call.ts
    with pytest.raises(TimeoutError):
        slack.wait_for("chat.delete", timeout=0.2)
    slack.clear()
    assert slack.calls == [] and slack.messages_in("C9") == []


def test_latency(slack: SlackStandIn, client: WebClient) -> None:
    slack.set_latency("auth.test", 0.3)
    start = time.monotonic()
    client.auth_test()
    assert time.monotonic() - start >= 0.3


def test_main_prints_url(capsys: pytest.CaptureFixture[str]) -> None:
    # main() installs signal handlers, which only works in the main thread: run it here
    # and stop it by raising SIGTERM from a timer.
    result: list[int] = []
    original = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    threading.Timer(0.2, lambda: signal.raise_signal(signal.SIGTERM)).start()
    try:
        result.append(main(["--port", "0", "-q"]))
    finally:
        signal.signal(signal.SIGTERM, original[0])
        signal.signal(signal.SIGINT, original[1])
    assert result == [0]
    assert "/api/" in capsys.readouterr().out
