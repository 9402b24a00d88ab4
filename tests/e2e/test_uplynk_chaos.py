"""Uplynk failing at random (500/503/429/dropped connections) through 200 operations: none lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.core.operation import Operation
from bot.core.store import OperationStore
from bot.slack_standin import SlackCall
from tests.fixtures_bot import AD_BREAKS, ARCHIVE, MARKETING, USER, Bot, button_value

OPERATIONS = 200
CONCURRENCY = 8
LIBRARIES = (MARKETING, ARCHIVE, AD_BREAKS)
TERMINAL = {"done", "partial", "failed"}


def first_answer(bot: Bot, key: str, timeout: float = 30) -> SlackCall:
    """The first response_url post on `key` that is not a progress line."""
    return bot.slack.wait_for(
        lambda c: (
            c.method == "response_url"
            and c.key == key
            and not str(c.payload.get("text", "")).startswith("Adding to")
        ),
        timeout=timeout,
    )


def run_one(bot: Bot, library_id: str, assets: list[str]) -> str:
    """Command, preview (again while Uplynk refuses the look-ups), confirm; the operation id."""
    for _ in range(20):
        response, key = bot.command(f"{library_id} {' '.join(assets)}")
        assert response.status_code == 200, response.text
        operation_id = button_value(first_answer(bot, key), "addtolib_confirm")
        if operation_id:
            break
    else:
        raise AssertionError(f"no preview for {assets} after 20 tries")
    _, key = bot.click("addtolib_confirm", operation_id)
    first_answer(bot, key)
    return operation_id


def all_operations(bot: Bot) -> list[Operation]:
    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        return store.recent(user_id=USER, limit=OPERATIONS * 2)
    finally:
        store.dispose()


@pytest.mark.reliability
def test_random_uplynk_failures_lose_nothing(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(UPLYNK_BATCH_SIZE="2", process=True)
    catalogue = bot.simulator.catalogue
    jobs: list[tuple[str, list[str]]] = []
    for n in range(OPERATIONS):
        size = 3 + n % 2
        assets = [catalogue.add_asset(f"chaos {n}-{i}").id for i in range(size)]
        jobs.append((LIBRARIES[n % len(LIBRARIES)], assets))
    before = {lib: catalogue.library_assets(lib) for lib in LIBRARIES}
    # One request in ten fails: 500 (not retried), 503 or 429 (retried by the client with
    # backoff), or a connection dropped after 0.2 s (a timeout, not retried).
    bot.simulator.faults.chaos(0.1, (500, 503, 429), seed=20240601, hang=0.2)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        ids = list(pool.map(lambda job: run_one(bot, *job), jobs))
    assert len(set(ids)) == OPERATIONS

    deadline = time.monotonic() + 30
    while True:
        operations = [o for o in all_operations(bot) if o.id in set(ids)]
        stuck = [(o.id, o.state) for o in operations if o.state not in TERMINAL]
        if not stuck or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    bot.simulator.faults.clear()
    assert not stuck, f"operations left unfinished: {stuck}"
    assert len(operations) == OPERATIONS
    states = [o.state for o in operations]
    assert "done" in states and {"partial", "failed"} & set(states), states  # chaos did bite

    expected = dict(zip(ids, jobs, strict=True))
    for operation in operations:
        library_id, assets = expected[operation.id]
        held = catalogue.library_assets(library_id) - before[library_id]
        added, failed = set(operation.added_ids), set(operation.failed_ids)
        assert operation.library_id == library_id and list(operation.new_ids) == assets
        assert added | failed == set(assets) and not added & failed, operation
        assert added <= held, f"{operation.id}: stored as added but not in the library"
        assert not failed & held, f"{operation.id}: stored as failed but in the library"
        assert (operation.state == "done") == (added == set(assets))
        assert (operation.state == "failed") == (failed == set(assets))
        for asset_id in assets:
            outcome = operation.outcome.get(asset_id, "")
            assert outcome == "added" if asset_id in added else outcome.startswith("failed")
    # Nothing else crept in: the libraries hold exactly what the store says was added.
    for library_id in LIBRARIES:
        added_here = {a for o in operations if o.library_id == library_id for a in o.added_ids}
        assert catalogue.library_assets(library_id) - before[library_id] == added_here
    # Every failure was handled: no job crashed on the way.
    log = bot.process.output()
    assert "Traceback" not in log and " ERROR " not in log
