"""Per-call latency and failure injection for the Uplynk simulator (thread-safe)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CALLS = ("add", "remove", "get_library", "find_libraries", "get_assets", "*")


@dataclass
class Action:
    """What the simulator should do with one request before (or instead of) answering it."""

    delay: float = 0.0
    status: int | None = None  # answer this error status instead of the real answer
    retry_after: str | None = None
    hang: float = 0.0  # sleep this long, then drop the connection without answering


@dataclass
class _Countdown:
    times: int
    status: int | None = None
    retry_after: str | None = None
    hang: float = 0.0
    after: int = 0  # let this many matching requests through first


@dataclass
class _Chaos:
    probability: float
    statuses: tuple[int, ...]
    hang: float
    rng: random.Random


def _check_call(call: str) -> str:
    if call not in CALLS:
        raise ValueError(f"unknown call {call!r}; expected one of {', '.join(CALLS)}")
    return call


class Faults:
    """Latency per call, N-times failures or hangs, and random failures (chaos) per call.

    "*" matches every call; a call's own setting wins over "*".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, float] = {}
        self._pending: dict[str, list[_Countdown]] = {}
        self._chaos: dict[str, _Chaos] = {}
        self._swallowed: set[str] = set()

    def set_latency(self, call: str, seconds: float) -> None:
        with self._lock:
            self._latency[_check_call(call)] = max(0.0, float(seconds))

    def fail(
        self,
        call: str,
        status: int,
        times: int = 1,
        retry_after: float | str | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` requests of `call` answer `status` (with Retry-After if given).

        With `after`, that many requests of `call` are answered normally first (so a test can
        fail the third batch of a job, say).
        """
        if times < 1:
            return
        retry = None
        if retry_after is not None:
            retry = f"{retry_after:g}" if isinstance(retry_after, float) else str(retry_after)
        with self._lock:
            self._pending.setdefault(_check_call(call), []).append(
                _Countdown(
                    times=int(times), status=int(status), retry_after=retry, after=int(after)
                )
            )

    def timeout(self, call: str, seconds: float, times: int = 1) -> None:
        """The next `times` requests of `call` hang `seconds` and then get no answer."""
        if times < 1:
            return
        with self._lock:
            self._pending.setdefault(_check_call(call), []).append(
                _Countdown(times=int(times), hang=float(seconds))
            )

    def chaos(
        self,
        probability: float,
        statuses: Iterable[int] = (500, 503, 429),
        seed: int | None = None,
        *,
        call: str = "*",
        hang: float = 0.0,
    ) -> None:
        """From now on, each request of `call` fails with chance `probability` (until clear()).

        A failure answers one of `statuses` at random; with `hang` > 0, hanging that long and
        dropping the connection is one more, equally likely, outcome. `seed` makes the dice
        repeatable. Queued fail()/timeout() faults are used up first.
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be between 0 and 1, got {probability!r}")
        codes = tuple(int(s) for s in statuses)
        if not codes and hang <= 0:
            raise ValueError("chaos needs at least one status or a hang")
        with self._lock:
            self._chaos[_check_call(call)] = _Chaos(
                float(probability), codes, max(0.0, float(hang)), random.Random(seed)
            )

    def swallow(self, asset_ids: Iterable[str]) -> None:
        """Add calls answer 200 for these assets but leave them out of the library (until
        clear()): the silent failure that only reading the assets back can catch."""
        with self._lock:
            self._swallowed.update(a.lower() for a in asset_ids)

    def swallowed(self, asset_ids: Iterable[str]) -> set[str]:
        """Which of these assets an add call should pretend to add."""
        with self._lock:
            return {a for a in asset_ids if a.lower() in self._swallowed}

    def clear(self) -> None:
        with self._lock:
            self._latency.clear()
            self._pending.clear()
            self._chaos.clear()
            self._swallowed.clear()

    def configure(self, spec: dict[str, Any]) -> None:
        """Apply a control-endpoint spec: {"latency": {...}, "fail": [...], "timeout": [...],
        "chaos": [{"probability": p, "statuses": [...], "seed": n, "call": c, "hang": s}],
        "swallow": [asset ids]}."""
        if spec.get("clear"):
            self.clear()
        for call, seconds in (spec.get("latency") or {}).items():
            self.set_latency(call, seconds)
        for item in spec.get("fail") or []:
            self.fail(
                item["call"],
                item["status"],
                item.get("times", 1),
                item.get("retry_after"),
                item.get("after", 0),
            )
        for item in spec.get("timeout") or []:
            self.timeout(item["call"], item["seconds"], item.get("times", 1))
        self.swallow(spec.get("swallow") or [])
        for item in spec.get("chaos") or []:
            self.chaos(
                item["probability"],
                item.get("statuses", (500, 503, 429)),
                item.get("seed"),
                call=item.get("call", "*"),
                hang=item.get("hang", 0.0),
            )

    def next_action(self, call: str) -> Action:
        """Consume one injected fault for this request (the call's own before "*")."""
        with self._lock:
            delay = self._latency.get(call, self._latency.get("*", 0.0))
            for key in (call, "*"):
                queue = self._pending.get(key)
                if not queue:
                    continue
                head = queue[0]
                if head.after > 0:
                    head.after -= 1
                    return Action(delay)
                head.times -= 1
                if head.times <= 0:
                    queue.pop(0)
                return Action(delay, head.status, head.retry_after, head.hang)
            chaos = self._chaos.get(call) or self._chaos.get("*")
            if chaos is not None and chaos.rng.random() < chaos.probability:
                outcomes = len(chaos.statuses) + (1 if chaos.hang > 0 else 0)
                pick = chaos.rng.randrange(outcomes)
                if pick < len(chaos.statuses):
                    return Action(delay, status=chaos.statuses[pick])
                return Action(delay, hang=chaos.hang)
            return Action(delay)
