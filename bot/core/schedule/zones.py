"""The requester's time zone (Slack's `users.info` -> `tz`), cached for a TTL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class UserZones:
    """zone_of(user_id) -> an IANA zone name, or None when it cannot be read (read as UTC).

    `lookup` asks Slack (users.info); an answer is kept `ttl` seconds, a failure is not kept.
    """

    def __init__(
        self,
        lookup: Callable[[str], str | None],
        ttl: float = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, user_id: str) -> str | None:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(user_id)
        if cached is not None and now - cached[1] < self.ttl:
            return cached[0]
        try:
            name = self.lookup(user_id)
        except Exception as exc:  # Slack down, user not found: read the time as UTC
            log.warning("time zone of %s not read (%s); using UTC", user_id, exc)
            return None
        with self._lock:
            self._cache[user_id] = (name, now)
        return name
