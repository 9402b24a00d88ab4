"""A short-lived cache of Uplynk's library list, refreshed in the background, for type-ahead."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future

from bot.uplynk.errors import UplynkError
from bot.uplynk.models import Library

log = logging.getLogger(__name__)

#: Slack's cap on the options of one select menu.
MAX_OPTIONS = 100


class LibraryDirectory:
    """Every library (find-libraries with an empty search), at most `ttl` seconds old when
    possible. A stale list is served at once while a refresh runs in the background, so a
    slow Uplynk never delays a type-ahead answer past `wait` seconds."""

    def __init__(
        self,
        fetch: Callable[[], list[Library]],
        executor: Executor,
        ttl: float = 60.0,
        wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._executor = executor
        self.ttl = ttl
        self.wait = wait
        self._clock = clock
        self._lock = threading.Lock()
        self._libraries: list[Library] | None = None
        self._fetched_at = 0.0
        self._refreshing: Future | None = None

    def warm(self) -> None:
        """Start a refresh now (at start-up), so the first type-ahead finds a list."""
        self._refresh()

    def libraries(self) -> list[Library] | None:
        """The cached list (refreshing it when stale); None if no list arrived within `wait`."""
        with self._lock:
            libraries, age = self._libraries, self._clock() - self._fetched_at
        if libraries is not None:
            if age > self.ttl:
                self._refresh()
            return libraries
        future = self._refresh()
        # A timeout or a failed fetch: answer with what there is.
        with contextlib.suppress(Exception):
            future.result(timeout=self.wait)
        with self._lock:
            return self._libraries

    def search(
        self, query: str, allowed: set[str] | str, limit: int = MAX_OPTIONS
    ) -> list[Library]:
        """Libraries whose name (or id) contains `query`, among `allowed` ids ("*": all)."""
        wanted = (query or "").strip().casefold()
        found = []
        for library in self.libraries() or []:
            if allowed != "*" and library.id not in allowed:
                continue
            if (
                wanted
                and wanted not in library.desc.casefold()
                and not library.id.startswith(wanted)
            ):
                continue
            found.append(library)
        found.sort(
            key=lambda lib: (not lib.desc.casefold().startswith(wanted), lib.desc.casefold())
        )
        return found[:limit]

    def _refresh(self) -> Future:
        with self._lock:
            if self._refreshing is not None and not self._refreshing.done():
                return self._refreshing
            self._refreshing = self._executor.submit(self._load)
            return self._refreshing

    def _load(self) -> None:
        try:
            libraries = self._fetch()
        except UplynkError as exc:
            log.warning("could not list libraries for type-ahead: %s", exc)
            return
        with self._lock:
            self._libraries = libraries
            self._fetched_at = self._clock()
