"""The delivery worker against the Slack stand-in over HTTP: lost answers, fallbacks, ordering."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bot.core.delivery.outbox import Outbox, Owed
from bot.core.store import OperationStore
from bot.slack import blocks
from bot.slack.delivery.owing import message
from bot.slack.delivery.rendering import Renderer
from bot.slack.delivery.worker import DeliveryWorker, delivery_client
from bot.slack_standin import SlackStandIn
from tests.ops_support import wait_until


@pytest.fixture
def worker(store: OperationStore, slack: SlackStandIn) -> Iterator[DeliveryWorker]:
    client = delivery_client("xoxb-test", slack.url)
    client.timeout = 1  # an answer slower than this is "lost in transit"
    running = DeliveryWorker(Outbox(store), client, Renderer(None), poll=0.1).start()
    try:
        yield running
    finally:
        running.stop()


def _final(box: Outbox, entry_id: int):
    return wait_until(lambda: (e := box.get(entry_id)).state not in ("queued", "sending") and e)


def test_a_post_whose_answer_was_lost_is_repeated_once(
    worker: DeliveryWorker, slack: SlackStandIn
) -> None:
    slack.set_latency("chat.postMessage", 1.5)  # it lands, but after the client gave up
    worker.outbox.add([Owed("post", "text", channel="C1", args={"text": "hello"})])
    slack.wait_for("chat.postMessage", timeout=10)
    slack.set_latency("chat.postMessage", 0)
    entry = _final(worker.outbox, 1)
    assert entry.state == "sent" and entry.lost == 1
    assert [m["text"] for m in slack.messages_in("C1")] == ["hello", "hello"]  # once repeated


def test_a_second_lost_answer_is_never_repeated_again(
    worker: DeliveryWorker, slack: SlackStandIn
) -> None:
    slack.set_latency("chat.postMessage", 1.5)
    worker.outbox.add([Owed("post", "text", channel="C1", args={"text": "hello"})])
    entry = _final(worker.outbox, 1)
    assert entry.state == "failed" and "answer lost twice" in entry.error
    wait_until(lambda: len(slack.messages_in("C1")) == 2)
    assert len(slack.calls_of("chat.postMessage")) == 2  # never a third copy


def test_a_reply_waits_for_its_parent_and_an_update_finds_its_message(
    worker: DeliveryWorker, slack: SlackStandIn, store: OperationStore
) -> None:
    op = store.create(user_id="U1")
    slack.fail("chat.postMessage", "internal_error", channel="C1")  # the parent needs a retry
    worker.outbox.add(
        [
            Owed("post", "text", "C1", op.id, args={"text": "parent"}, key="p"),
            Owed("post", "text", "C1", op.id, args={"text": "reply"}, thread="p"),
            message("update", blocks.info("edited"), operation_id=op.id, target="p"),
            Owed("ephemeral", "text", "C1", op.id, args={"text": "psst"}, user_id="U1"),
        ]
    )
    wait_until(lambda: worker.outbox.stats().depth == 0)
    parent, reply = slack.messages_in("C1")
    assert (parent["text"], reply["text"]) == ("edited", "reply")
    assert reply["thread_ts"] == parent["ts"]
    assert [e.state for e in worker.outbox.entries(op.id)] == ["sent"] * 4
    assert slack.calls_of("chat.postEphemeral")[0].payload["user"] == "U1"


def test_summary_refused_for_not_in_channel_goes_through_the_response_url(
    worker: DeliveryWorker, slack: SlackStandIn
) -> None:
    slack.fail("chat.postMessage", "not_in_channel", channel="G1")
    url = slack.response_url("fallback")
    worker.outbox.add([Owed("post", "text", "G1", args={"text": "summary"}, fallback_url=url)])
    entry = _final(worker.outbox, 1)
    assert entry.state == "sent" and entry.result_ts is None
    (posted,) = slack.responses("fallback")
    assert posted.payload["response_type"] == "in_channel" and posted.text == "summary"


def _notice(worker: DeliveryWorker, store: OperationStore, url: str) -> None:
    """A notice owed on the requester's response_url while it lasts, by DM otherwise."""
    op = store.create(user_id="U1", response_url=url)
    args = {"text": "closed", "via_response_url": True}
    worker.outbox.add([Owed("dm", "text", "U1", op.id, args=args)])


def test_a_notice_lost_on_the_response_url_is_repeated_there_never_by_dm(
    worker: DeliveryWorker, slack: SlackStandIn, store: OperationStore
) -> None:
    slack.set_latency("response_url", 1.2)  # it lands, but after the client gave up
    _notice(worker, store, slack.response_url("notice"))
    slack.wait_for("response_url", timeout=10)
    slack.set_latency("response_url", 0)
    entry = _final(worker.outbox, 1)
    assert (entry.state, entry.lost) == ("sent", 1)
    assert slack.calls_of("chat.postMessage") == []  # no direct message as well
    answers = slack.responses("notice")
    assert len(answers) == 2 and all(a.payload["replace_original"] for a in answers)


def test_a_notice_lost_on_the_response_url_then_refused_there_is_not_sent_by_dm(
    worker: DeliveryWorker, slack: SlackStandIn, store: OperationStore
) -> None:
    slack.set_latency("response_url", 1.2)
    _notice(worker, store, slack.response_url("notice"))
    slack.wait_for("response_url", timeout=10)
    slack.set_latency("response_url", 0)
    slack.fail("response_url", "expired_url")
    entry = _final(worker.outbox, 1)
    assert entry.state == "failed" and "lost" in entry.error, entry.error
    assert slack.calls_of("chat.postMessage") == []


def test_a_response_url_that_cannot_be_reached_leaves_the_notice_to_a_dm(
    worker: DeliveryWorker, slack: SlackStandIn, store: OperationStore
) -> None:
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/gone"
    _notice(worker, store, url)
    entry = _final(worker.outbox, 1)
    assert (entry.state, entry.lost) == ("sent", 0)
    (dm,) = slack.calls_of("chat.postMessage")
    assert dm.payload["channel"] == "U1" and dm.payload["text"] == "closed"


def test_not_in_channel_without_a_fallback_is_permanent(
    worker: DeliveryWorker, slack: SlackStandIn
) -> None:
    slack.fail("chat.postMessage", "not_in_channel", channel="G1")
    worker.outbox.add([Owed("post", "text", "G1", args={"text": "x"})])
    entry = _final(worker.outbox, 1)
    assert (entry.state, entry.error, entry.attempts) == ("failed", "not_in_channel", 1)
