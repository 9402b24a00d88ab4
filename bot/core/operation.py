"""An operation (docs/SPEC.md §5): its record, its states and the one table of allowed moves."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.core.tables import operations

__all__ = [
    "ACTIVE",
    "COLUMNS",
    "DICT_COLUMNS",
    "LEASED",
    "LIST_COLUMNS",
    "STATES",
    "TERMINAL",
    "TIME_COLUMNS",
    "TRANSITIONS",
    "Operation",
    "State",
    "TransitionError",
    "check_transition",
]


class State(StrEnum):
    """The state of an operation; a str, so stored values and comparisons with text hold."""

    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    CONFIRMED = "confirmed"
    RUNNING = "running"
    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DENIED = "denied"
    UNDONE = "undone"
    INTERRUPTED = "interrupted"
    REJECTED = "rejected"
    UNDOING = "undoing"
    SCHEDULED = "scheduled"  # confirmed, waiting for its time (docs/SPEC.md §15)


#: Every state an operation can be in. The normal path is
#: pending -> confirmed -> running -> done | partial | failed. A protected library
#: (docs/SPEC.md §7) goes pending -> awaiting_approval -> confirmed, or -> rejected.
STATES: tuple[State, ...] = tuple(State)

#: States in which nothing is in progress. Some still allow a follow-up action that
#: starts a new transition (done -> undone, partial/failed/interrupted -> running on retry).
TERMINAL: frozenset[State] = frozenset(
    {
        State.DONE,
        State.PARTIAL,
        State.FAILED,
        State.CANCELLED,
        State.EXPIRED,
        State.DENIED,
        State.UNDONE,
        State.INTERRUPTED,
        State.REJECTED,
    }
)

#: States in which an operation is waiting for a click or being executed.
ACTIVE: frozenset[State] = frozenset(STATES) - TERMINAL

#: States held under a lease (lease_at, from the database's clock): a run or an undo in
#: progress, or the instant of a confirmation. The sweep takes them back when it expires.
LEASED: tuple[State, ...] = (State.CONFIRMED, State.RUNNING, State.UNDOING)

#: The only state changes there are: every compare-and-set of the store consults it.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset(
        {
            State.AWAITING_APPROVAL,  # confirm on a protected library (docs/SPEC.md §7)
            State.SCHEDULED,  # confirm of a scheduled add (docs/SPEC.md §15)
            State.CONFIRMED,
            State.CANCELLED,
            State.DENIED,  # permission withdrawn since the preview, or refused at the pick
            State.EXPIRED,
            State.DONE,  # the preview found every asset already in the library
        }
    ),
    State.AWAITING_APPROVAL: frozenset(
        {
            State.CONFIRMED,
            State.SCHEDULED,  # approved before its time: it waits for the time
            State.REJECTED,
            State.EXPIRED,
            State.CANCELLED,
            State.DENIED,  # approved, but the requester lost their [[allow]] (docs/SPEC.md §7)
        }
    ),
    # docs/SPEC.md §15: claimed at its time (-> confirmed, then running as any run), cancelled
    # before it, or expired when its time was missed by more than the grace.
    State.SCHEDULED: frozenset({State.CONFIRMED, State.CANCELLED, State.EXPIRED}),
    # denied: a scheduled run whose requester lost the right by its time.
    State.CONFIRMED: frozenset({State.RUNNING, State.INTERRUPTED, State.DENIED}),
    State.RUNNING: frozenset({State.DONE, State.PARTIAL, State.FAILED, State.INTERRUPTED}),
    # Retry (a click) and resume (after a restart) run the rest.
    State.PARTIAL: frozenset({State.RUNNING, State.UNDOING, State.UNDONE}),
    State.FAILED: frozenset({State.RUNNING}),
    State.INTERRUPTED: frozenset({State.RUNNING}),
    State.DONE: frozenset({State.UNDOING, State.UNDONE}),
    # An undo ends undone, or hands the operation back (done/partial) with the rest to remove.
    State.UNDOING: frozenset({State.UNDONE, State.DONE, State.PARTIAL}),
    State.CANCELLED: frozenset(),
    State.EXPIRED: frozenset(),
    State.DENIED: frozenset(),
    State.UNDONE: frozenset(),
    State.REJECTED: frozenset(),
}


class TransitionError(ValueError):
    """A state change the table does not allow: a programming error, raised before the database
    is touched."""


def check_transition(from_states: Iterable[str], to_state: str) -> None:
    """Raise TransitionError unless the table allows each of from_states -> to_state."""
    for state in from_states:
        if State(to_state) not in TRANSITIONS[State(state)]:
            raise TransitionError(f"no transition {state} -> {to_state} (bot.core.operation)")


#: The columns of the operations table, which are the fields of Operation.
COLUMNS: tuple[str, ...] = tuple(c.name for c in operations.columns)
LIST_COLUMNS = frozenset(
    {
        "requested_ids",
        "new_ids",
        "present_ids",
        "missing_ids",
        "added_ids",
        "failed_ids",
        "removed_ids",
        "errors",
    }
)
DICT_COLUMNS = frozenset({"outcome", "asset_titles", "library_facts"})
TIME_COLUMNS = frozenset(
    {
        "created_at",
        "updated_at",
        "confirmed_at",
        "finished_at",
        "undone_at",
        "lease_at",
        "run_at",
        "started_at",
        "summary_queued_at",
    }
)


@dataclass(frozen=True)
class Operation:
    """One row of the operations table; datetimes are timezone-aware UTC."""

    id: str
    state: State
    user_id: str
    created_at: datetime
    updated_at: datetime
    team_id: str | None = None
    channel_id: str | None = None
    library_id: str | None = None
    library_name: str | None = None
    requested_ids: list[str] = field(default_factory=list)
    new_ids: list[str] = field(default_factory=list)
    present_ids: list[str] = field(default_factory=list)
    missing_ids: list[str] = field(default_factory=list)
    added_ids: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    outcome: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    response_url: str | None = None
    summary_channel: str | None = None
    summary_ts: str | None = None
    notify_channel: str | None = None
    notify_ts: str | None = None
    confirmed_by: str | None = None
    undone_by: str | None = None
    rejected_by: str | None = None
    denial_reason: str | None = None
    error: str | None = None
    confirmed_at: datetime | None = None
    finished_at: datetime | None = None
    undone_at: datetime | None = None
    run_token: str | None = None
    lease_at: datetime | None = None
    undo_from: str | None = None
    asset_titles: dict[str, str] = field(default_factory=dict)
    run_at: datetime | None = None
    run_zone: str | None = None
    started_at: datetime | None = None
    library_facts: dict[str, Any] = field(default_factory=dict)
    summary_queued_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Operation:
        values = dict(row)
        values["state"] = State(values["state"])
        for name in LIST_COLUMNS:
            values[name] = list(values.get(name) or [])
        for name in DICT_COLUMNS:
            values[name] = dict(values.get(name) or {})
        for name in TIME_COLUMNS:
            value = values.get(name)
            if value is not None and value.tzinfo is None:
                values[name] = value.replace(tzinfo=UTC)
        return cls(**values)

    @property
    def short_id(self) -> str:
        """The first 8 hex digits, for logs and messages."""
        return self.id[:8]

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE

    def age(self, now: datetime | None = None) -> timedelta:
        """Time since the operation was created."""
        return (now or _utcnow()) - self.created_at

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every field (lists and dicts copied)."""
        return dataclasses.asdict(self)


def _check_fields_match_table() -> None:
    names = {f.name for f in dataclasses.fields(Operation)}
    if names != set(COLUMNS):  # pragma: no cover - a programming error caught at import
        raise RuntimeError(f"Operation fields and table columns differ: {names ^ set(COLUMNS)}")


_check_fields_match_table()


def _utcnow() -> datetime:
    return datetime.now(UTC)
