"""Two bot processes on one database: a confirm clicked on both at once runs exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures_bot import (
    MARKETING,
    NOTIFY,
    USER,
    Bot,
    dump,
    free_assets,
    patches,
    stored,
    text_of,
)

CLICKS = 16  # per operation, half to each instance


@pytest.mark.reliability
def test_simultaneous_confirms_on_two_instances_add_once(start_bot: Callable[..., Bot]) -> None:
    first = start_bot()
    second = start_bot()  # same env: the same DATABASE_URL (PostgreSQL, or one SQLite file)
    assert first.process.port != second.process.port
    assert first.env["DATABASE_URL"] == second.env["DATABASE_URL"]
    instances = (first, second)

    free = free_assets(first.simulator, MARKETING, 9)
    for round_no in range(3):
        assets = free[round_no * 3 : round_no * 3 + 3]
        # Each round's preview comes from a different instance; both see the same row.
        planner = instances[round_no % 2]
        _, operation_id = planner.preview(f'"Marketing Library" {" ".join(assets)}')
        assert operation_id
        first.simulator.clear_requests()
        start = threading.Barrier(CLICKS)

        def click(n: int, operation_id: str = operation_id, start=start) -> str:
            start.wait(timeout=10)
            _, key = instances[n % 2].click("addtolib_confirm", operation_id)
            return key

        with ThreadPoolExecutor(max_workers=CLICKS) as pool:
            keys = set(pool.map(click, range(CLICKS)))
        assert len(keys) == CLICKS

        def every_click_answered(keys: set[str] = keys):
            answers = [c for c in first.slack.calls_of("response_url") if c.key in keys]
            return answers if {c.key for c in answers} == keys else None

        first.slack.wait_until(every_click_answered, timeout=20)
        # The winner's outcome replaces its progress line; the summary comes from the outbox,
        # so either may arrive first.
        first.slack.wait_until(
            lambda: any("Added 3 assets" in text_of(c) for c in every_click_answered() or []),
            timeout=20,
        )
        first.summary(operation_id)
        answers = every_click_answered()
        outcomes = {c.key for c in answers if "Added 3 assets" in text_of(c)}
        refusals = {c.key for c in answers if "nothing more was done" in text_of(c)}
        assert len(outcomes) == 1 and len(refusals) == CLICKS - 1, [text_of(c) for c in answers]
        assert outcomes.isdisjoint(refusals)

        assert [p.body for p in patches(first.simulator)] == [{"asset_ids": assets}]
        summaries = [
            c
            for c in first.slack.calls_of("chat.postMessage")
            if operation_id in dump(c) and c.payload.get("channel") != NOTIFY
        ]
        assert len(summaries) == 1
        operation = stored(first, operation_id)
        assert operation.state == "done" and operation.confirmed_by == USER
        assert sorted(operation.added_ids) == sorted(assets)
        assert set(assets) <= first.simulator.catalogue.library_assets(MARKETING)

        def parents() -> list:
            return [
                c
                for c in first.slack.calls_of("chat.postMessage")
                if c.payload.get("channel") == NOTIFY and not c.payload.get("thread_ts")
            ]

        first.slack.wait_until(lambda n=round_no: len(parents()) > n)
        assert len(parents()) == round_no + 1  # one notification thread per operation
