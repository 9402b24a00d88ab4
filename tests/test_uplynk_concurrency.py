"""Concurrent add batches under the adaptive limit, against the simulator over real HTTP."""

from __future__ import annotations

import threading
from collections import Counter

from bot.simulator import DEMO_LIBRARY_IDS, UplynkSimulator
from bot.uplynk.errors import UplynkNotFound
from tests.fixtures_uplynk import make_client

MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]


def bulk_assets(sim: UplynkSimulator, count: int) -> list[str]:
    return [sim.catalogue.add_asset(f"Bulk clip {i}").id for i in range(count)]


def sent_ids(sim: UplynkSimulator) -> Counter[str]:
    sent: Counter[str] = Counter()
    for request in sim.requests:
        if request.call == "add" and request.method == "PATCH":
            body = request.body
            sent.update([body["asset_id"]] if "asset_id" in body else body["asset_ids"])
    return sent


def test_four_batches_in_flight_and_every_asset_sent_once(simulator: UplynkSimulator) -> None:
    ids = bulk_assets(simulator, 2000)
    simulator.faults.set_latency("add", 0.1)
    numbers: list[int] = []
    with make_client(simulator, concurrency=4) as client:
        result = client.add_assets(MARKETING, ids, before_batch=lambda n, b: numbers.append(n))
    assert result.ok and sorted(result.succeeded_ids) == sorted(ids)
    assert 2 <= simulator.peak_in_flight("add") <= 4
    assert sent_ids(simulator) == Counter(ids)
    assert sorted(numbers) == list(range(1, 21))
    assert set(ids) <= simulator.catalogue.library_assets(MARKETING)


def test_progress_reaches_the_total_with_batches_out_of_order(simulator) -> None:
    ids = bulk_assets(simulator, 1000)
    simulator.faults.set_latency("add", 0.05)
    seen: list[int] = []
    lock = threading.Lock()

    def on_batch(batch, done, total) -> None:
        with lock:
            seen.append(done)
        assert total == 1000

    with make_client(simulator, concurrency=3) as client:
        client.add_assets(MARKETING, ids, on_batch=on_batch)
    assert seen == sorted(seen) and seen[-1] == 1000 and len(seen) == 10


def test_429s_with_retry_after_lower_the_limit_and_lose_nothing(simulator) -> None:
    ids = bulk_assets(simulator, 2000)
    simulator.faults.set_latency("add", 0.05)
    simulator.faults.fail("add", 429, times=4, retry_after=1, after=3)
    with make_client(simulator, concurrency=4) as client:
        result = client.add_assets(MARKETING, ids)
        lowest = client.last_limit.lowest
    assert result.ok
    assert set(ids) <= simulator.catalogue.library_assets(MARKETING)
    assert lowest < 4
    statuses = Counter(r.call for r in simulator.requests)
    assert statuses["add"] == 20 + 4  # each 429 retried once, nothing else sent twice
    sent = sent_ids(simulator)
    assert set(sent) == set(ids)
    assert sum(sent.values()) == 2000 + 4 * 100  # only the four refused requests were resent


def test_a_stopping_error_stops_batches_not_yet_sent(simulator) -> None:
    ids = bulk_assets(simulator, 1000)
    simulator.faults.set_latency("add", 0.05)
    simulator.faults.fail("add", 404, times=1, after=1)
    with make_client(simulator, concurrency=2) as client:
        result = client.add_assets(MARKETING, ids)
    failed = [b for b in result.batches if not b.ok]
    assert failed and all(isinstance(b.error, UplynkNotFound) for b in failed)
    sent = sum(1 for r in simulator.requests if r.call == "add")
    assert sent < 10  # the batches after the 404 were reported, not sent
    assert sorted(result.succeeded_ids + result.failed_ids) == sorted(ids)


def test_concurrency_one_keeps_the_batches_in_order(simulator) -> None:
    ids = bulk_assets(simulator, 300)
    order: list[int] = []
    with make_client(simulator, concurrency=1) as client:
        client.add_assets(MARKETING, ids, on_batch=lambda b, d, t: order.append(d))
    assert order == [100, 200, 300]
    assert simulator.peak_in_flight("add") == 1
