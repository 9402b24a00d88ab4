"""An adaptive limit on batches in flight: halve on overload, creep back up on success (AIMD)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("bot.uplynk")

#: Successful batches in a row after which the limit grows by one.
GROW_AFTER = 4


class AdaptiveLimit:
    """How many batches of one job may be in flight, adapting to Uplynk's answers.

    ``acquire()`` blocks until a slot is free and no Retry-After pause is running; every
    ``release(overloaded=...)`` reports how the batch went. An overload (a 429 or 5xx seen,
    even one that a retry got past) halves the limit; ``GROW_AFTER`` clean batches in a row
    raise it by one, never above ``ceiling``. ``pause(seconds)`` holds new batches back for
    a Retry-After.
    """

    def __init__(
        self,
        ceiling: int,
        *,
        on_change: Callable[[int, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = max(1, int(ceiling))
        self.limit = self.ceiling
        self.lowest = self.ceiling
        self.in_flight = 0
        self.peak_in_flight = 0
        self._clean = 0
        self._resume_at = 0.0
        self._clock = clock
        self._on_change = on_change
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while True:
                wait = self._resume_at - self._clock()
                if wait <= 0 and self.in_flight < self.limit:
                    break
                self._cond.wait(timeout=wait if wait > 0 else None)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def release(self, *, overloaded: bool) -> None:
        with self._cond:
            self.in_flight -= 1
            before = self.limit
            if overloaded:
                self._clean = 0
                self.limit = max(1, self.limit // 2)
            else:
                self._clean += 1
                if self._clean >= GROW_AFTER and self.limit < self.ceiling:
                    self._clean = 0
                    self.limit += 1
            self.lowest = min(self.lowest, self.limit)
            self._cond.notify_all()
        if before != self.limit:
            log.info("uplynk concurrency limit %d -> %d", before, self.limit)
            if self._on_change is not None:
                self._on_change(before, self.limit)

    def pause(self, seconds: float) -> None:
        """Start no new batch for `seconds` (a Retry-After from Uplynk)."""
        with self._cond:
            self._resume_at = max(self._resume_at, self._clock() + max(0.0, seconds))
            self._cond.notify_all()
