"""The live policy: re-read when its file changes, keeping the last good one on a broken edit."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.core.policy import Policy, PolicyError

log = logging.getLogger(__name__)

#: How often (seconds) an access may look at the file again; reloads land well within 10 s.
CHECK_INTERVAL = 2.0


class PolicyHolder:
    """Stands in for a Policy (every attribute is the current policy's) and swaps it on change.

    The file is read on access, at most every `interval` seconds (it is small), and parsed
    only when its content changed; a re-save of the same content changes nothing. Changed
    content is taken only when a second read `settle` seconds later (default interval / 8)
    finds the same bytes (docs/SPEC.md §16): a file caught half-written (a prefix that parses,
    without its `[[protect]]`, say) is left for the next look. A file that no longer parses, or
    has disappeared, keeps the last good policy and is logged once (with the file and line).
    `path` None: a fixed policy (the console's demo policy).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        policy: Policy | None = None,
        *,
        interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        settle: float | None = None,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.interval = interval
        self.clock = clock
        self.settle = interval / 8 if settle is None else settle
        self.pause = pause  # waits `settle` seconds between the two reads
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Policy], None]] = []
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()
        self.problem: str | None = None  # why the file's current content is not in force
        self._digest = self._read_digest()
        if policy is None:
            policy = Policy.load(self.path) if self.path else Policy.deny_all("no policy")
        self._policy = policy
        self._next_check = clock() + interval

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)

    def watch(self) -> PolicyHolder:
        """Also look every `interval` s on a thread, so a broken edit is logged even when idle."""
        if self.path is not None and self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name="addtolib-policy", daemon=True
            )
            self._watcher.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.refresh()
            except Exception:
                log.exception("policy watch failed; will look again")

    def on_change(self, listener: Callable[[Policy], None]) -> None:
        """Call `listener(new_policy)` after each successful reload."""
        self._listeners.append(listener)

    def current(self) -> Policy:
        """The policy in force, after a look at the file if `interval` has passed."""
        if self.path is not None and self.clock() >= self._next_check:
            self.refresh()
        return self._policy

    def refresh(self) -> bool:
        """Look at the file now; True when a changed, valid policy was swapped in."""
        with self._lock:
            self._next_check = self.clock() + self.interval
            content = self._read()
            digest = _digest(content)
            if digest == self._digest:
                return False
            self.pause(self.settle)
            if self._read() != content:
                # Being written: not a policy yet. The digest stays, so the next look reads again.
                log.info("policy file %s is changing; will read it again", self.path)
                return False
            self._digest = digest
            try:
                if content is None or self.path is None:
                    raise PolicyError(f"{self.path}: the policy file is missing")
                policy = Policy.from_bytes(content, source=str(self.path))
            except PolicyError as exc:
                self.problem = exc.message
                log.error("policy not reloaded, keeping the last good one: %s", exc.message)
                return False
            self._policy, self.problem = policy, None
        log.info("policy reloaded from %s", self.path)
        for listener in self._listeners:
            try:
                listener(policy)
            except Exception:
                log.exception("policy change listener failed")
        return True

    def _read_digest(self) -> str | None:
        return _digest(self._read())

    def _read(self) -> bytes | None:
        if self.path is None:
            return None
        try:
            with open(self.path, "rb") as handle:
                return handle.read()
        except OSError:
            return None


def _digest(content: bytes | None) -> str | None:
    return None if content is None else hashlib.sha256(content).hexdigest()
