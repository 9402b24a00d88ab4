"""The outbox (docs/SPEC.md §12): Slack calls the bot owes, stored durably, claimed on a lease."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    case,
    exists,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Update

from bot.core.delivery.home_entries import insert_home
from bot.core.tables import operations, outbox

if TYPE_CHECKING:
    from bot.core.store import OperationStore

__all__ = ["KINDS", "SUMMARY", "Entry", "Outbox", "OutboxStats", "Owed", "insert_owed", "outbox"]

#: post: chat.postMessage in a channel; dm: chat.postMessage to a user id; update: chat.update
#: of a message an earlier entry posted; ephemeral: chat.postEphemeral to one user; home:
#: views.publish of user_id's App Home (bot.core.delivery.home_entries: one queued per user);
#: complete: functions.completeSuccess / completeError of a Workflow Builder step (bot.core.steps).
KINDS = ("post", "dm", "update", "ephemeral", "home", "complete")
OPEN = ("queued", "sending")
DONE = ("sent", "skipped", "failed")
#: An answer lost in transit allows one repeat of the post; a second loss ends it.
MAX_LOST = 2
#: The key of an operation's summary: queuing it marks operations.summary_queued_at.
SUMMARY = "summary"
#: Seconds a claim lasts unless renewed (the worker renews it while its delivery runs).
LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class Owed:
    """One Slack call owed, described without Slack: the Slack layer renders `template`.

    thread: reply in the thread of the message posted by this operation's entry with that key
    ("notify" is the operation's notification thread, operations.notify_ts).
    key: names the posted message, for later updates (target) and replies (thread).
    fallback_url: a response_url that may carry the post when the bot is not in the channel.
    """

    kind: str
    template: str
    channel: str | None = None
    operation_id: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    thread: str | None = None
    key: str | None = None
    target: str | None = None
    fallback_url: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown outbox kind {self.kind!r}")
        if self.kind == "update" and not self.target:
            raise ValueError("an update names the key of the message it updates (target)")
        if self.kind in ("ephemeral", "home") and not self.user_id:
            raise ValueError(f"an entry of kind {self.kind} needs user_id")


@dataclass(frozen=True)
class Entry:
    """A row of the outbox."""

    id: int
    kind: str
    template: str
    state: str
    args: dict[str, Any]
    attempts: int
    lost: int
    due_at: datetime
    created_at: datetime
    operation_id: str | None = None
    lane: str | None = None
    channel: str | None = None
    user_id: str | None = None
    thread: str | None = None
    key: str | None = None
    target: str | None = None
    fallback_url: str | None = None
    lease_until: datetime | None = None
    lease_token: str | None = None
    updated_at: datetime | None = None
    sent_at: datetime | None = None
    result_channel: str | None = None
    result_ts: str | None = None
    error: str | None = None
    calling_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Entry:
        values = dict(row)
        values["args"] = dict(values.get("args") or {})
        return cls(**values)


@dataclass(frozen=True)
class OutboxStats:
    """What /metrics and `check` show: depth, oldest open entry, and the rows of each state
    not yet delivered (queued, sending, failed; delivered ones are not counted)."""

    depth: int
    oldest_age: float  # seconds; 0 when empty
    by_state: dict[str, int]


def insert_owed(conn: Connection, entries: Iterable[Owed], now: datetime | None = None) -> int:
    """Insert entries on `conn` (the caller's transaction); returns how many."""
    now = now or _db_now(conn)
    owed = list(entries)
    rows = [
        {
            "operation_id": e.operation_id,
            "lane": e.operation_id,
            "kind": e.kind,
            "channel": e.channel,
            "user_id": e.user_id,
            "template": e.template,
            "args": dict(e.args),
            "thread": e.thread,
            "key": e.key,
            "target": e.target,
            "fallback_url": e.fallback_url,
            "state": "queued",
            "attempts": 0,
            "lost": 0,
            "due_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for e in owed
    ]
    inserted = 0
    for row in rows:  # one at a time: ids grow in the order given, which is the lane's order
        if row["kind"] == "home":
            inserted += insert_home(conn, row, now)
            continue
        conn.execute(outbox.insert().values(**row))
        inserted += 1
    summarized = {e.operation_id for e in owed if e.key == SUMMARY and e.operation_id}
    if summarized:
        conn.execute(
            operations.update()
            .where(operations.c.id.in_(summarized), operations.c.summary_queued_at.is_(None))
            .values(summary_queued_at=now)
        )
    return inserted


def _db_now(conn: Connection) -> datetime:
    """Lease times come from the database's clock where instances may run on several hosts."""
    if conn.dialect.name == "postgresql":
        value: datetime = conn.execute(text("SELECT now()")).scalar_one()
        return value.astimezone(UTC)
    return datetime.now(UTC)  # SQLite: one file, one host, one clock


def _held(entry: Entry) -> Update:
    """An update of `entry` that only its claim's holder gets through (the lease token)."""
    return outbox.update().where(
        outbox.c.id == entry.id,
        outbox.c.state == "sending",
        outbox.c.lease_token == entry.lease_token,
    )


class Outbox:
    """Claim, complete and reschedule outbox entries; every change is a compare-and-set."""

    # The claim's holder renews it while its delivery runs (DeliveryWorker), so a slow Slack
    # call never lets another instance take a live sender's entry over.
    def __init__(self, store: OperationStore, lease_seconds: float = LEASE_SECONDS) -> None:
        self.store = store
        self.lease = timedelta(seconds=lease_seconds)

    # -- writing ---------------------------------------------------------------------------

    def add(self, entries: Iterable[Owed]) -> int:
        """Queue entries in a transaction of their own (no state change owes them)."""
        entries = list(entries)
        if not entries:
            return 0
        with self.store._connect(begin=True) as conn:
            count = insert_owed(conn, entries, _db_now(conn))
        self.store.notify_enqueued()
        return count

    # -- claiming --------------------------------------------------------------------------

    def candidates(self, limit: int = 100) -> list[Entry]:
        """Due entries that head their lane (nothing earlier of the same operation still open),
        and entries whose sender's lease ran out (it died mid-call)."""
        earlier = outbox.alias("earlier")
        blocked = exists().where(
            earlier.c.lane == outbox.c.lane,
            earlier.c.id < outbox.c.id,
            earlier.c.state.in_(OPEN),
        )
        heads = or_(outbox.c.lane.is_(None), ~blocked)
        with self.store._connect(begin=False) as conn:
            now = _db_now(conn)
            # Two index ranges of ix_outbox_state_due, not one OR over the whole table.
            queued = and_(outbox.c.state == "queued", outbox.c.due_at <= now)
            expired = and_(outbox.c.state == "sending", outbox.c.lease_until < now)
            rows = [
                row
                for due in (queued, expired)
                for row in conn.execute(
                    select(outbox)
                    .where(due, heads)
                    .order_by(outbox.c.due_at, outbox.c.id)
                    .limit(limit)
                ).mappings()
            ]
        rows.sort(key=lambda r: (r["due_at"], r["id"]))
        return [Entry.from_row(r) for r in rows[:limit]]

    def claim(self, entry_id: int) -> Entry | None:
        """Take an entry for delivery with a lease; None if another sender has it or it is done.

        Reclaiming an entry whose lease ran out while its Slack call was under way
        (calling_at set) counts a lost answer (the post may have landed), so a post is repeated
        at most once; one whose holder died before calling lost nothing.
        """
        token = uuid.uuid4().hex
        with self.store._connect(begin=True) as conn:
            now = _db_now(conn)
            stmt = (
                outbox.update()
                .where(outbox.c.id == entry_id, self._due(now))
                .values(
                    state="sending",
                    lease_token=token,
                    lease_until=now + self.lease,
                    attempts=outbox.c.attempts + 1,
                    lost=outbox.c.lost
                    + case(
                        (and_(outbox.c.state == "sending", outbox.c.calling_at.is_not(None)), 1),
                        else_=0,
                    ),
                    calling_at=None,
                    updated_at=now,
                )
                .returning(*outbox.c)
            )
            row = conn.execute(stmt).mappings().first()
        return Entry.from_row(row) if row is not None else None

    @staticmethod
    def _due(now: datetime) -> Any:
        return or_(
            and_(outbox.c.state == "queued", outbox.c.due_at <= now),
            and_(outbox.c.state == "sending", outbox.c.lease_until < now),
        )

    # -- holding the claim (fenced by the lease token) ------------------------------------

    def renew(self, entry: Entry) -> bool:
        """Extend the claim by a lease; False if it was taken over (or finished)."""
        return self._hold(entry)

    def calling(self, entry: Entry) -> bool:
        """The fence before a Slack call: True if the claim is still ours, now marked as
        calling (a takeover from here on counts a lost answer); False: post nothing."""
        return self._hold(entry, calling=True)

    def _hold(self, entry: Entry, calling: bool = False) -> bool:
        with self.store._connect(begin=True) as conn:
            now = _db_now(conn)
            values: dict[str, Any] = {"lease_until": now + self.lease}
            if calling:
                values["calling_at"] = now
            return conn.execute(_held(entry).values(**values)).rowcount == 1

    # -- finishing (fenced by the lease token) ---------------------------------------------

    def sent(
        self,
        entry: Entry,
        channel: str | None,
        ts: str | None,
        operation_fields: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record the delivery and, in the same transaction, the ts others depend on."""
        with self.store._connect(begin=True) as conn:
            now = _db_now(conn)
            done = self._finish(
                conn, entry, state="sent", sent_at=now, result_channel=channel, result_ts=ts
            )
            if done and operation_fields and entry.operation_id:
                conn.execute(
                    operations.update()
                    .where(operations.c.id == entry.operation_id)
                    .values(**operation_fields, updated_at=now)
                )
        return done

    def skipped(self, entry: Entry, reason: str) -> bool:
        with self.store._connect(begin=True) as conn:
            return self._finish(conn, entry, state="skipped", error=reason)

    def failed(self, entry: Entry, reason: str, then: Iterable[Owed] = ()) -> bool:
        """Record a permanent failure; `then` (e.g. telling the requester) is queued with it."""
        then = list(then)
        with self.store._connect(begin=True) as conn:
            done = self._finish(conn, entry, state="failed", error=reason[:2000])
            if done and then:
                insert_owed(conn, then, _db_now(conn))
        if then:
            self.store.notify_enqueued()
        return done

    def retry_later(
        self, entry: Entry, delay: float, reason: str, *, lost: bool = False, deadline: float
    ) -> str:
        """Put the entry back, due after `delay` s; past `deadline` s of age it fails instead.

        Returns the entry's new state ("queued" or "failed").
        """
        with self.store._connect(begin=True) as conn:
            now = _db_now(conn)
            lost_count = entry.lost + (1 if lost else 0)
            due = now + timedelta(seconds=delay)
            if lost_count >= MAX_LOST:
                state, error = "failed", f"answer lost twice, not repeated again: {reason}"
            elif due - entry.created_at > timedelta(seconds=deadline):
                state, error = "failed", f"gave up after {deadline:.0f} s: {reason}"
            else:
                state, error = "queued", reason
            self._finish(conn, entry, state=state, error=error[:2000], due_at=due, lost=lost_count)
        return state

    def _finish(self, conn: Connection, entry: Entry, **values: Any) -> bool:
        values.setdefault("updated_at", _db_now(conn))
        values.update(lease_token=None, lease_until=None, calling_at=None)
        return conn.execute(_held(entry).values(**values)).rowcount == 1

    # -- reading ---------------------------------------------------------------------------

    def get(self, entry_id: int) -> Entry | None:
        with self.store._connect(begin=False) as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == entry_id)).mappings().first()
        return Entry.from_row(row) if row is not None else None

    def entries(self, operation_id: str | None = None) -> list[Entry]:
        """Every entry (of one operation), oldest first."""
        query = select(outbox).order_by(outbox.c.id)
        if operation_id is not None:
            query = query.where(outbox.c.operation_id == operation_id)
        with self.store._connect(begin=False) as conn:
            rows = conn.execute(query).mappings().all()
        return [Entry.from_row(r) for r in rows]

    def posted(self, operation_id: str | None, key: str) -> tuple[str, str] | None:
        """(channel, ts) of the message an entry with this key posted for this operation."""
        query = (
            select(outbox.c.result_channel, outbox.c.result_ts)
            .where(
                outbox.c.operation_id == operation_id,
                outbox.c.key == key,
                outbox.c.state == "sent",
                outbox.c.result_ts.is_not(None),
            )
            .order_by(outbox.c.id.desc())
            .limit(1)
        )
        with self.store._connect(begin=False) as conn:
            row = conn.execute(query).first()
        return (row[0], row[1]) if row is not None else None

    def keys(self, operation_id: str, prefix: str) -> list[str]:
        """Keys of the messages this operation's entries post (queued or not), in order: e.g.
        every copy of an approval request, for the updates that follow it."""
        query = (
            select(outbox.c.key)
            .where(
                outbox.c.operation_id == operation_id,
                outbox.c.kind.in_(("post", "dm")),
                outbox.c.key.startswith(prefix, autoescape=True),
            )
            .order_by(outbox.c.id)
        )
        with self.store._connect(begin=False) as conn:
            found = conn.execute(query).scalars().all()
        return list(dict.fromkeys(found))

    def queued_for(self, operation_ids: Iterable[str]) -> set[str]:
        """Which of these operations still have messages waiting to be delivered."""
        ids = list(operation_ids)
        if not ids:
            return set()
        query = select(outbox.c.operation_id).where(
            outbox.c.operation_id.in_(ids), outbox.c.state.in_(OPEN)
        )
        with self.store._connect(begin=False) as conn:
            return set(conn.execute(query.distinct()).scalars().all())

    def next_due(self) -> datetime | None:
        """When the earliest queued entry falls due (None when nothing is queued)."""
        query = select(func.min(outbox.c.due_at)).where(outbox.c.state == "queued")
        with self.store._connect(begin=False) as conn:
            return conn.execute(query).scalar()

    def stats(self) -> OutboxStats:
        """Cheap at any size: only the rows not delivered are counted (an index range of
        ix_outbox_state_due); delivered ones, the bulk of the table, are never scanned."""
        with self.store._connect(begin=False) as conn:
            now = _db_now(conn)
            counts = dict(
                conn.execute(
                    select(outbox.c.state, func.count())
                    .where(outbox.c.state.in_((*OPEN, "failed")))
                    .group_by(outbox.c.state)
                ).all()
            )
            oldest = conn.execute(
                select(func.min(outbox.c.created_at)).where(outbox.c.state.in_(OPEN))
            ).scalar()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        depth = sum(counts.get(s, 0) for s in OPEN)
        return OutboxStats(depth=depth, oldest_age=age, by_state=counts)

    def problems(self, older_than: float = 60.0) -> list[str]:
        """For `check`: entries waiting longer than `older_than` s, and failed ones."""
        stats = self.stats()
        found = []
        if stats.depth and stats.oldest_age > older_than:
            found.append(
                f"{stats.depth} Slack message(s) waiting; the oldest for "
                f"{stats.oldest_age:.0f} s (is Slack reachable, is a server running?)"
            )
        failed = stats.by_state.get("failed", 0)
        if failed:
            query = select(outbox).where(outbox.c.state == "failed").order_by(outbox.c.id.desc())
            with self.store._connect(begin=False) as conn:
                last = Entry.from_row(conn.execute(query.limit(1)).mappings().one())
            found.append(
                f"{failed} Slack message(s) could not be delivered; the last: "
                f"{last.template} to {last.channel or last.user_id}: {last.error}"
            )
        return found


def outbox_stats(store: OperationStore) -> OutboxStats:
    """Depth, oldest open entry's age and rows by state (for /metrics)."""
    return Outbox(store).stats()
