"""Durable delivery end to end (SPEC 12): signed HTTP into `python -m bot serve`, posts paced
and retried through the outbox against the stand-in's real per-channel limit and outages."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from bot.core.delivery.outbox import Outbox
from bot.slack_standin import SlackCall
from tests.fixtures_bot import MARKETING, NOTIFY, Bot, dump, text_of
from tests.ops_support import notify_posts, opened_store, operation, wait_until

CHANNEL = "C0GENERAL"  # where the tests' commands come from, so where summaries go
# Time as a parameter: the bot paces posts at RATE a second and the stand-in holds every
# channel to the same RATE, so "under the per-channel limit" runs the real code 20x faster
# than Slack's one post a second; retries start after BACKOFF s instead of one second.
RATE = 20.0
BACKOFF = 0.1
FAST = {"ADDTOLIB_POST_RATE": str(RATE), "ADDTOLIB_DELIVERY_BACKOFF": str(BACKOFF)}


def previews(bot: Bot, count: int) -> list[str]:
    """`count` previews of one fresh asset each, made concurrently; their operation ids."""
    assets = [bot.simulator.catalogue.add_asset(f"Delivery clip {n}").id for n in range(count)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda a: bot.preview(f"{MARKETING} {a}")[1], assets))
    assert all(ids), ids
    return ids


def confirm_at_once(bots: list[Bot], operation_ids: list[str]) -> None:
    """Click every confirm at the same moment (alternating between instances)."""
    start = threading.Barrier(len(operation_ids))

    def click(n: int) -> None:
        start.wait(timeout=30)
        bots[n % len(bots)].click("addtolib_confirm", operation_ids[n])

    with ThreadPoolExecutor(max_workers=len(operation_ids)) as pool:
        list(pool.map(click, range(len(operation_ids))))


def summaries(bot: Bot, operation_id: str) -> list[SlackCall]:
    return [
        c
        for c in bot.slack.calls_of("chat.postMessage", ok=True)
        if c.channel != NOTIFY and operation_id in dump(c)
    ]


def details(bot: Bot, operation_id: str) -> list[SlackCall]:
    return [
        c
        for c in notify_posts(bot)
        if c.payload.get("thread_ts") and f"Operation `{operation_id}`" in text_of(c)
    ]


def all_delivered(bot: Bot, operation_ids: list[str]) -> bool:
    return all(summaries(bot, o) and details(bot, o) for o in operation_ids)


def check_threads(bot: Bot, operation_ids: list[str]) -> None:
    """One summary, one parent, one details reply each; replies in their parent's thread,
    after it; nothing posted twice."""
    posts = notify_posts(bot)
    parents = {c.ts: c for c in posts if not c.payload.get("thread_ts")}
    assert len(parents) == len(operation_ids)
    for operation_id in operation_ids:
        assert len(summaries(bot, operation_id)) == 1
        stored = operation(bot, operation_id)
        assert stored.summary_channel == CHANNEL and stored.summary_ts
        (reply,) = details(bot, operation_id)
        assert stored.notify_channel == NOTIFY and stored.notify_ts in parents
        assert reply.payload["thread_ts"] == stored.notify_ts
        assert float(reply.ts) > float(stored.notify_ts)  # the parent first
    texts = Counter(dump(c) for c in bot.slack.calls_of("chat.postMessage", ok=True))
    assert [t for t, n in texts.items() if n > 1 and "thread_ts" in t] == []


def no_queue_left(bot: Bot) -> None:
    def outbox_stats():
        with opened_store(bot) as store:
            return Outbox(store).stats()

    # A post Slack has answered is marked sent a moment after: wait for that (a deadline).
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: outbox_stats().depth == 0, timeout=10)
    stats = outbox_stats()
    assert stats.depth == 0 and "failed" not in stats.by_state, stats


def test_thirty_operations_at_once_under_the_per_channel_limit(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(**FAST)
    operation_ids = previews(bot, 30)
    bot.slack.limit_posts(rate=RATE, burst=5, retry_after=1 / RATE)
    confirm_at_once([bot], operation_ids)
    # Five of them are undone as soon as their summary is out: a second reply in the thread.
    undone = operation_ids[:5]
    for operation_id in undone:
        bot.summary(operation_id, timeout=60)
        bot.click("addtolib_undo", operation_id)

    parents: dict[str, str] = {}  # operation id -> its thread's ts, once the bot recorded it

    def parent_ts(operation_id: str) -> str | None:
        if operation_id not in parents and (ts := operation(bot, operation_id).notify_ts):
            parents[operation_id] = ts
        return parents.get(operation_id)

    def op_thread(call: SlackCall, operation_id: str) -> bool:
        return call.payload.get("thread_ts") == parent_ts(operation_id)

    def finished() -> bool:
        # Runs under the stand-in's lock, on every call it records: at most one read of the
        # store per undone operation, or the stand-in would stall the bot's posts.
        if not all_delivered(bot, operation_ids):
            return False
        posts = notify_posts(bot)
        for operation_id in undone:
            ts = parent_ts(operation_id)
            if not ts or not any(
                c.payload.get("thread_ts") == ts and "undid this" in text_of(c) for c in posts
            ):
                return False
        return True

    # The notification channel carries 65 posts at RATE a second: about 3 s; 60 s is generous.
    bot.slack.wait_until(finished, timeout=60)
    check_threads(bot, operation_ids)
    for operation_id in undone:  # in order: the details, then the undo
        thread = [c for c in notify_posts(bot) if op_thread(c, operation_id)]
        assert [("undid this" in text_of(c)) for c in thread] == [False, True]
    wait_until(lambda: outbox_depth(bot) == 0)
    no_queue_left(bot)


OUTAGE = 3  # seconds: every first attempt and several retries (BACKOFF apart, doubling) meet it


def outbox_depth(bot: Bot) -> int:
    with opened_store(bot) as store:
        return Outbox(store).stats().depth


def test_posts_owed_during_a_slack_outage_are_delivered_after_it(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(**FAST)
    operation_ids = previews(bot, 5)
    bot.slack.outage(OUTAGE)
    down_since = time.monotonic()
    confirm_at_once([bot], operation_ids)
    wait_until(lambda: all(operation(bot, o).state == "done" for o in operation_ids))
    _, key = bot.command("history")
    assert "notification queued" in text_of(bot.reply(key, "operations"))

    bot.slack.wait_until(lambda: all_delivered(bot, operation_ids), timeout=60)
    assert time.monotonic() - down_since >= OUTAGE
    refused = [c for c in bot.slack.calls_of("chat.postMessage") if c.error]
    assert refused and {c.error for c in refused} == {"service_unavailable"}
    check_threads(bot, operation_ids)
    no_queue_left(bot)


def test_a_new_server_delivers_what_a_stopped_one_left_in_the_outbox(
    start_bot: Callable[..., Bot],
) -> None:
    first = start_bot(process=True)
    operation_ids = previews(first, 3)
    first.slack.outage(600)
    confirm_at_once([first], operation_ids)
    wait_until(lambda: all(operation(first, o).state == "done" for o in operation_ids))
    wait_until(lambda: len(first.slack.calls_of("chat.postMessage")) >= 3)  # tried, refused
    first.process.stop()
    with opened_store(first) as store:
        left = Outbox(store).stats()
    assert left.depth >= 3 * 3 and left.by_state.get("sent") is None, left

    first.slack.outage(0)
    second = start_bot()
    second.slack.wait_until(lambda: all_delivered(second, operation_ids), timeout=90)
    check_threads(second, operation_ids)
    no_queue_left(second)


def test_a_permanent_error_is_recorded_and_not_retried(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(process=True, **FAST)
    (operation_id,) = previews(bot, 1)
    bot.slack.fail("chat.postMessage", "invalid_blocks", channel=CHANNEL)
    bot.click("addtolib_confirm", operation_id)
    # The thread still gets its posts: a failed summary does not block the operation's lane.
    bot.slack.wait_until(lambda: details(bot, operation_id), timeout=30)

    def tried() -> list[SlackCall]:
        return [c for c in bot.slack.calls_of("chat.postMessage") if c.channel == CHANNEL]

    # A retry would have come within 10 backoffs (the first is BACKOFF): watch until then, and
    # stop at once if one does.
    deadline = time.monotonic() + 10 * BACKOFF
    while time.monotonic() < deadline and len(tried()) < 2:
        time.sleep(0.02)
    assert [c.error for c in tried()] == ["invalid_blocks"]
    with opened_store(bot) as store:
        box = Outbox(store)
        (summary,) = [e for e in box.entries(operation_id) if e.template == "summary"]
        problems = box.problems()
    assert (summary.state, summary.error, summary.attempts) == ("failed", "invalid_blocks", 1)
    assert any("could not be delivered" in p and "invalid_blocks" in p for p in problems)
    assert "could not deliver summary for operation" in bot.process.output()
    scraped = requests.get(bot.process.url + "/metrics", timeout=5).text
    assert 'addtolib_slack_deliveries_total{result="failed"} 1.0' in scraped
    assert 'addtolib_slack_deliveries_total{result="sent"}' in scraped
    assert "addtolib_outbox_depth" in scraped and "addtolib_outbox_oldest_seconds" in scraped


def test_two_instances_never_deliver_one_entry_twice(start_bot: Callable[..., Bot]) -> None:
    first, second = start_bot(**FAST), start_bot(**FAST)  # one database, two delivery workers
    operation_ids = previews(first, 12)
    first.slack.limit_posts(
        rate=RATE, burst=5, retry_after=1 / RATE
    )  # 429s make both instances retry the same rows
    confirm_at_once([first, second], operation_ids)
    first.slack.wait_until(lambda: all_delivered(first, operation_ids), timeout=60)
    time.sleep(0.5)  # anything delivered twice would show up now (a 429 holds 1/RATE s)
    check_threads(first, operation_ids)
    with opened_store(first) as store:
        entries = Outbox(store).entries()
    assert {e.state for e in entries} <= {"sent", "skipped"}
    assert all(e.lost == 0 for e in entries)
