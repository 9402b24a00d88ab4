"""Two bot processes on one database: concurrent Approve clicks run once; Approve vs Deny."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures_bot import AD_BREAKS, ADMIN, Bot, patches, stored
from tests.test_e2e_approvals import (
    APPROVALS,
    LEAD,
    ask,
    current,
    has_buttons,
    requests_in,
    summary,
)
from tests.test_e2e_approvals import start as start

CLICKS = 8


def _clicks(instances: tuple[Bot, Bot], operation_id: str, who: list[tuple[str, str]]) -> None:
    barrier = threading.Barrier(len(who))

    def click(n: int) -> None:
        action, user = who[n]
        barrier.wait(timeout=10)
        instances[n % 2].click(action, operation_id, user_id=user)

    with ThreadPoolExecutor(max_workers=len(who)) as pool:
        list(pool.map(click, range(len(who))))


@pytest.mark.reliability
def test_eight_concurrent_approves_on_two_instances_run_once(start) -> None:
    first, second = start(), start()
    assert first.env["DATABASE_URL"] == second.env["DATABASE_URL"]
    operation_id, _, assets = ask(first, AD_BREAKS, 3)
    first.simulator.clear_requests()
    # The approver and an admin hammer Approve, half on each instance.
    _clicks(
        (first, second),
        operation_id,
        [("addtolib_approve", (LEAD, ADMIN)[n % 2]) for n in range(CLICKS)],
    )
    [request] = first.slack.wait_until(
        lambda: requests_in(first, APPROVALS, operation_id), timeout=30
    )
    summary(first, operation_id)
    assert stored(first, operation_id).state == "done"
    assert [p.body for p in patches(first.simulator)] == [{"asset_ids": assets}]
    summaries = [
        c
        for c in first.slack.calls_of("chat.postMessage")
        if c.channel == "C0GENERAL" and operation_id in str(c.payload)
    ]
    assert len(summaries) == 1
    # One update of the request, showing the outcome without buttons (the thread's parent,
    # updated last in the operation's outbox lane, says the run is over).
    parent_updated(first, operation_id, "added 3 assets")
    [update] = request_updates(first, request.ts)
    assert "Approved by" in str(update.payload) and not has_buttons(update.payload)
    assert not has_buttons(current(first, APPROVALS, request.ts))


def request_updates(bot: Bot, ts: str) -> list:
    return [c for c in bot.slack.calls_of("chat.update", ok=True) if c.payload.get("ts") == ts]


def parent_updated(bot: Bot, operation_id: str, says: str) -> None:
    """Wait for the notification thread's parent to be updated in place to `says`."""
    notify_ts = bot.slack.wait_until(lambda: stored(bot, operation_id).notify_ts)
    bot.slack.wait_until(
        lambda: [c for c in request_updates(bot, notify_ts) if says in str(c.payload)],
        timeout=20,
    )


@pytest.mark.reliability
def test_approve_racing_deny_has_exactly_one_outcome(start) -> None:
    first, second = start(), start()
    for _ in range(3):
        _race(first, second)


def _race(first: Bot, second: Bot) -> None:
    operation_id, _, assets = ask(first, AD_BREAKS, 1)
    [request] = first.slack.wait_until(lambda: requests_in(first, APPROVALS, operation_id))
    first.simulator.clear_requests()
    _clicks((first, second), operation_id, [("addtolib_approve", LEAD), ("addtolib_deny", ADMIN)])

    def decided() -> str | None:
        state = stored(first, operation_id).state
        return state if state in ("done", "rejected") else None

    final = first.slack.wait_until(decided, timeout=20)
    added = patches(first.simulator)
    if final == "done":
        assert [p.body for p in added] == [{"asset_id": assets[0]}]
        expected = "Approved by"
    else:
        assert added == []
        assert assets[0] not in first.simulator.catalogue.library_assets(AD_BREAKS)
        expected = "Denied by"

    def shows_the_decision() -> bool:
        message = current(first, APPROVALS, request.ts)
        return expected in str(message) and not has_buttons(message)

    # The request message ends showing the one decision that won, without buttons, after
    # exactly one update (the thread's parent, updated after it, marks the end of the lane).
    first.slack.wait_until(shows_the_decision, timeout=10)
    parent_updated(first, operation_id, "added 1 asset" if final == "done" else "denied by")
    [update] = request_updates(first, request.ts)
    assert expected in str(update.payload) and not has_buttons(update.payload)
