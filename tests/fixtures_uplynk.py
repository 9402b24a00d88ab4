"""Pytest fixtures for the Uplynk side: a running simulator and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.simulator import UplynkSimulator
from bot.uplynk import UplynkClient


def make_client(sim: UplynkSimulator, **overrides: object) -> UplynkClient:
    """A client for `sim` with tiny backoff (tests stay fast); keyword overrides win."""
    options: dict[str, object] = {
        "batch_size": 100,
        "timeout": (2.0, 5.0),
        "max_retries": 4,
        "backoff_factor": 0.01,
        "backoff_max": 0.05,
    }
    options.update(overrides)
    return UplynkClient(sim.url, sim.user_id, sim.api_key, **options)  # type: ignore[arg-type]


@pytest.fixture
def simulator() -> Iterator[UplynkSimulator]:
    """A started Uplynk simulator on 127.0.0.1 (any free port), seeded with the demo catalogue."""
    sim = UplynkSimulator(host="127.0.0.1", port=0).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def uplynk_client(simulator: UplynkSimulator) -> Iterator[UplynkClient]:
    """An UplynkClient talking to `simulator` over real HTTP, with millisecond backoff."""
    client = make_client(simulator)
    try:
        yield client
    finally:
        client.close()
