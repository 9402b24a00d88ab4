"""Outbox claims across instances (docs/SPEC.md §16): two bots on one database, a slow and
failing Uplynk, Slack calls longer than a claim's lease: each summary posted once, nothing
recorded as lost."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.delivery.outbox import Outbox
from tests.fixtures_bot import Bot, dump, text_of
from tests.ops_support import opened_store, operation, wait_until
from tests.test_e2e_delivery import (
    all_delivered,
    check_threads,
    confirm_at_once,
    previews,
    summaries,
)

LEASE = 0.6  # seconds an outbox claim lasts unless renewed
SLACK_LATENCY = 2.0  # each chat.postMessage: more than three leases


def test_two_instances_a_slow_failing_uplynk_and_slow_slack_post_each_summary_once(
    start_bot: Callable[..., Bot],
) -> None:
    settings = {"ADDTOLIB_OUTBOX_LEASE": str(LEASE)}
    first, second = start_bot(**settings), start_bot(**settings)  # one database
    operation_ids = previews(first, 4)
    # From now on Uplynk answers its library look-ups slowly, and with errors; the runs still
    # add (their PATCHes answer), and their summaries must not wait on Uplynk at all.
    faults = first.simulator.faults
    faults.set_latency("get_library", 1.5)
    faults.fail("get_library", 503, times=1000)
    first.slack.set_latency("chat.postMessage", SLACK_LATENCY)
    first.simulator.clear_requests()
    confirm_at_once([first, second], operation_ids)

    def delivered() -> bool:
        return all_delivered(first, operation_ids) and not open_entries(first)

    first.slack.wait_until(delivered, timeout=120)
    # Whatever was delivered is recorded, by the one holder of its claim.
    wait_until(lambda: all(operation(first, o).summary_ts for o in operation_ids), timeout=30)
    check_threads(first, operation_ids)
    with opened_store(first) as store:
        entries = Outbox(store).entries()
    assert {e.state for e in entries} <= {"sent", "skipped"}, [(e.id, e.error) for e in entries]
    assert [e for e in entries if e.lost or "lost" in (e.error or "")] == []
    for operation_id in operation_ids:
        (summary,) = summaries(first, operation_id)
        text = dump(summary)
        # The library's facts, stored with the preview: rendered from the database.
        assert "allow_copy" in text and "Marketing Library" in text_of(summary), text
    # Uplynk was slow and failing through it all (the runs asked it for the library).
    assert any(r.call == "get_library" for r in first.simulator.requests)
    # Per operation one summary, one thread parent, one details reply: no call repeated.
    assert len(first.slack.calls_of("chat.postMessage")) == 3 * len(operation_ids)


def open_entries(bot: Bot) -> int:
    with opened_store(bot) as store:
        return Outbox(store).stats().depth
