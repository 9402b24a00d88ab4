"""Helpers shared by the tests/test_ops_*.py end-to-end tests (threads, undo, retry, recovery)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.core.journal import BatchJournal
from bot.core.operation import Operation
from bot.core.store import OperationStore
from bot.slack_standin import SlackCall
from tests.fixtures_bot import NOTIFY, USER, Bot, dump, text_of


def add(bot: Bot, text: str, user_id: str = USER) -> tuple[str, SlackCall]:
    """Preview `text`, confirm it, wait for the channel summary; (operation id, summary)."""
    preview, operation_id = bot.preview(text, user_id=user_id)
    assert operation_id, text_of(preview)
    bot.click("addtolib_confirm", operation_id, user_id=user_id)
    return operation_id, bot.summary(operation_id)


@contextmanager
def opened_store(bot: Bot) -> Iterator[OperationStore]:
    """The bot's own database, read from the test (SQLite or PostgreSQL alike)."""
    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        yield store
    finally:
        store.dispose()


def operation(bot: Bot, operation_id: str) -> Operation:
    with opened_store(bot) as store:
        found = store.get(operation_id)
    assert found is not None, operation_id
    return found


def notify_posts(bot: Bot) -> list[SlackCall]:
    """Accepted chat.postMessage calls to the notification channel, in order."""
    return [c for c in bot.slack.calls_of("chat.postMessage", ok=True) if c.channel == NOTIFY]


def thread_of(bot: Bot, operation_id: str, timeout: float = 15) -> SlackCall:
    """The notification-thread parent of an operation (found through its details reply)."""
    reply = bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.ok
            and c.channel == NOTIFY
            and c.payload.get("thread_ts")
            and operation_id in dump(c)
        ),
        timeout=timeout,
    )
    parents = [c for c in notify_posts(bot) if c.ts == reply.payload["thread_ts"]]
    assert len(parents) == 1, "the reply's thread_ts names no parent message"
    return parents[0]


def replies(bot: Bot, parent: SlackCall) -> list[SlackCall]:
    return [c for c in notify_posts(bot) if c.payload.get("thread_ts") == parent.ts]


def wait_reply(bot: Bot, parent: SlackCall, contains: str, timeout: float = 15) -> SlackCall:
    """The first reply in `parent`'s thread whose text contains `contains`."""
    return bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.ok
            and c.channel == NOTIFY
            and c.payload.get("thread_ts") == parent.ts
            and contains in text_of(c)
        ),
        timeout=timeout,
    )


def adds(bot: Bot) -> list[list[str]]:
    """The asset ids of every PATCH (add) request the simulator received, in order."""
    out = []
    for request in bot.simulator.requests:
        if request.call == "add":
            body = request.body or {}
            out.append(body.get("asset_ids") or [body.get("asset_id")])
    return out


def removes(bot: Bot) -> list[list[str]]:
    """The asset ids of every DELETE (remove) request the simulator received, in order."""
    return [r.query["ids"].split(",") for r in bot.simulator.requests if r.call == "remove"]


def wait_until(condition: Callable[[], object], timeout: float = 15, every: float = 0.02):
    """Poll `condition` (for state outside the Slack stand-in, e.g. the simulator's requests)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(every)
    return result


# Time as a parameter: a batch cut off by a crash may be answered as late as one Uplynk request
# can take (connect 3.05 s + UPLYNK_TIMEOUT), so a resumed run waits that long for it first.
# 3 s instead of production's 30 keeps the wait real and the test short.
SHORT_REQUESTS = {"UPLYNK_TIMEOUT": "3"}


def bulk_assets(bot: Bot, count: int) -> list[str]:
    """`count` new assets in no library."""
    assets = [uuid.uuid4().hex for _ in range(count)]
    for n, asset_id in enumerate(assets):
        bot.simulator.catalogue.add_asset(f"Bulk asset {n}", id=asset_id)
    return assets


def journal(bot: Bot, operation_id: str, kind: str = "add"):
    with opened_store(bot) as store:
        return BatchJournal(store).entries(operation_id, kind)
