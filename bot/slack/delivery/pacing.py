"""Per-channel pacing: a token bucket near Slack's one post a second, with short bursts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Slack allows about one chat.postMessage a second per channel, with short bursts beyond it.
RATE = 1.0
#: One below the burst Slack tolerates, so that a second instance's post rarely meets a 429.
BURST = 4


class Pacer:
    """Tokens per channel: `rate` a second, at most `burst` saved up; a 429 empties the bucket."""

    def __init__(
        self,
        rate: float = RATE,
        burst: int = BURST,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, channel: str, now: float) -> float:
        tokens, at = self._buckets.get(channel, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def wait_time(self, channel: str) -> float:
        """Seconds until a post to `channel` may go (0: now)."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(channel, now)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, channel: str) -> bool:
        """Spend a token if there is one."""
        with self._lock:
            now = self.clock()
            tokens = self._tokens(channel, now)
            if tokens < 1:
                return False
            self._buckets[channel] = (tokens - 1, now)
            return True

    def refund(self, channel: str) -> None:
        """Give back a token taken for a call that was not made."""
        with self._lock:
            now = self.clock()
            self._buckets[channel] = (min(float(self.burst), self._tokens(channel, now) + 1), now)

    def hold(self, channel: str, seconds: float) -> None:
        """Slack said 429: nothing more to this channel for `seconds` (then one at a time)."""
        with self._lock:
            self._buckets[channel] = (1 - seconds * self.rate, self.clock())
