"""Uplynk's library list for type-ahead: cached, and looked up live when stale or missing a name."""

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
#: Live searches for typed text in flight at once; past it the cache answers. The executor is
#: shared with views.open, which must never queue behind a slow Uplynk.
MAX_LIVE = 4


class LibraryDirectory:
    """Every library (find-libraries with an empty search), listed again in the background when
    older than `ttl` seconds. A search goes live (find-libraries with the typed text) when the
    list has no match for it or is older than `fresh` seconds, and waits at most `wait` seconds
    for that answer: within it the live answer beats the cache; past it the cached matches stand,
    and the live answer, when it comes, is merged into the list for the next keystroke."""

    def __init__(
        self,
        find: Callable[[str], list[Library]],
        executor: Executor,
        ttl: float = 60.0,
        fresh: float = 5.0,
        wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_live: int = MAX_LIVE,
    ) -> None:
        self._find = find
        self._executor = executor
        self.ttl = ttl
        self.fresh = fresh
        self.wait = wait
        self.max_live = max_live
        self._clock = clock
        self._lock = threading.Lock()
        # Library id -> (library, when the look-up that last saw it started).
        self._entries: dict[str, tuple[Library, float]] = {}
        self._listed_at: float | None = None  # start of the last complete listing
        self._searched: dict[str, float] = {}  # typed text -> start of its last live search
        self._inflight: dict[str, Future] = {}

    def warm(self) -> Future | None:
        """List every library now (when a form opens), so the first keystrokes find a list."""
        return self._look_up("")

    def search(
        self, query: str, allowed: set[str] | str, limit: int = MAX_OPTIONS
    ) -> list[Library]:
        """Libraries whose name contains `query` (or whose id starts with it), among `allowed`
        ids ("*": all), answered within about `wait` seconds."""
        typed = (query or "").strip()
        wanted = typed.casefold()
        found, fresh = self._cached(wanted, allowed)
        if not found or not fresh:
            future = self._look_up(wanted, typed)
            if future is not None:
                # A timeout or a failed look-up: answer with what the cache has.
                with contextlib.suppress(Exception):
                    future.result(timeout=self.wait)
                if not future.done():
                    log.info(
                        "Uplynk took over %.1f s to find %r: cached matches offered",
                        self.wait,
                        wanted,
                    )
                found, _ = self._cached(wanted, allowed)
        if self._older_than(self.ttl):
            self._look_up("")
        found.sort(
            key=lambda lib: (not lib.desc.casefold().startswith(wanted), lib.desc.casefold())
        )
        return found[:limit]

    def _cached(self, wanted: str, allowed: set[str] | str) -> tuple[list[Library], bool]:
        """The cached matches, and whether a look-up covering `wanted` is under `fresh` s old."""
        now = self._clock()
        with self._lock:
            libraries = [library for library, _ in self._entries.values()]
            searches = [*self._searched.items()]
            if self._listed_at is not None:
                searches.append(("", self._listed_at))
        # A search for "holi" covers "holid": whatever contains the longer text contains it.
        fresh = any(text in wanted and now - at <= self.fresh for text, at in searches)
        found = [
            library
            for library in libraries
            if (allowed == "*" or library.id in allowed)
            and (wanted in library.desc.casefold() or library.id.startswith(wanted))
        ]
        return found, fresh

    def _older_than(self, seconds: float) -> bool:
        with self._lock:
            listed_at = self._listed_at
        return listed_at is None or self._clock() - listed_at > seconds

    def _look_up(self, wanted: str, typed: str = "") -> Future | None:
        """The look-up of `wanted` in flight (started if need be); None when too many are.
        Uplynk is sent the text as typed (`wanted` is its casefold, the cache's key)."""
        with self._lock:
            future = self._inflight.get(wanted)
            if future is not None:
                return future
            if wanted and len(self._inflight.keys() - {""}) >= self.max_live:
                return None
            try:
                future = self._executor.submit(self._load, wanted, typed, self._clock())
            except RuntimeError:  # the executor is shutting down
                return None
            self._inflight[wanted] = future
            return future

    def _load(self, wanted: str, typed: str, started: float) -> None:
        try:
            found = self._find(typed)
        except UplynkError as exc:
            log.warning("could not find libraries matching %r for type-ahead: %s", wanted, exc)
            return
        finally:
            with self._lock:
                self._inflight.pop(wanted, None)
        with self._lock:
            self._merge(wanted, found, started)

    def _merge(self, wanted: str, found: list[Library], started: float) -> None:
        """Fold an answer into the list (the lock held). It covers every library whose name
        contains `wanted`: those it lacks are gone or renamed, unless a look-up that started
        later saw them; what it has replaces what look-ups that started earlier saw, and what a
        later look-up covering it did not find stays out."""
        fetched = {library.id for library in found}
        for library_id, (library, seen_at) in list(self._entries.items()):
            if (
                seen_at <= started
                and library_id not in fetched
                and wanted in library.desc.casefold()
            ):
                del self._entries[library_id]
        later = [(text, at) for text, at in self._searched.items() if at > started]
        if self._listed_at is not None and self._listed_at > started:
            later.append(("", self._listed_at))
        for library in found:
            seen = self._entries.get(library.id)
            if seen is not None and seen[1] > started:
                continue  # a later look-up's view of it wins
            if seen is None and any(text in library.desc.casefold() for text, _ in later):
                continue  # a later look-up covering its name did not find it: gone since
            self._entries[library.id] = (library, started)
        if not wanted:
            self._listed_at = max(self._listed_at or started, started)
            return
        self._searched[wanted] = max(self._searched.get(wanted, started), started)
        now = self._clock()
        for text, at in list(self._searched.items()):
            if now - at > self.fresh:
                del self._searched[text]
