"""Slack events handled once each (docs/SPEC.md §14): an event_id inserted if absent, kept a day."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.core.store import OperationStore
from bot.core.tables import slack_events

#: Slack retries a failed event delivery three times within about an hour; a day is ample.
KEEP = timedelta(days=1)
#: How often (seconds) one process deletes expired ids, at most.
PRUNE_EVERY = 600.0


class SeenEvents:
    """`first(event_id)` is True for exactly one caller per event id, across instances: the
    primary key is the compare-and-set."""

    def __init__(self, store: OperationStore, keep: timedelta = KEEP) -> None:
        self.store = store
        self.keep = keep
        self._pruned_at = 0.0
        self._lock = threading.Lock()

    def first(self, event_id: str) -> bool:
        """Record `event_id`; False when it was recorded before (a redelivery)."""
        now = datetime.now(UTC)
        self._prune(now)
        try:
            with self.store.connection() as conn:
                conn.execute(slack_events.insert().values(event_id=event_id[:64], seen_at=now))
        except IntegrityError:
            return False
        return True

    def forget(self, event_id: str) -> None:
        """Handling failed before anything was done: let Slack's retry be handled."""
        with self.store.connection() as conn:
            conn.execute(delete(slack_events).where(slack_events.c.event_id == event_id[:64]))

    def seen(self, event_id: str) -> bool:
        query = select(slack_events.c.event_id).where(slack_events.c.event_id == event_id[:64])
        with self.store.connection(begin=False) as conn:
            return conn.execute(query).first() is not None

    def _prune(self, now: datetime) -> None:
        with self._lock:
            if time.monotonic() - self._pruned_at < PRUNE_EVERY and self._pruned_at:
                return
            self._pruned_at = time.monotonic()
        with self.store.connection() as conn:
            conn.execute(delete(slack_events).where(slack_events.c.seen_at < now - self.keep))
