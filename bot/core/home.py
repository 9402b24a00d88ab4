"""What a user's App Home shows (docs/SPEC.md §14), read from the database: no Slack here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select

from bot.core.delivery.outbox import Outbox, OutboxStats, Owed
from bot.core.operation import Operation, State
from bot.core.store import OperationStore
from bot.core.tables import operations

#: Operations waiting for a time of their own (docs/SPEC.md §15).
SCHEDULED_STATES: frozenset[str] = frozenset({State.SCHEDULED.value})
#: How many of each list the Home shows (docs/SPEC.md §14: the last 10 operations).
RECENT = 10
#: Approval requests waiting for one approver are few; this bounds the query, not the count.
AWAITING_SCAN = 1000
#: Not yet anything to look back on: a preview nobody confirmed, the modal's draft.
NOT_RECENT = frozenset({State.PENDING.value, State.AWAITING_APPROVAL.value}) | SCHEDULED_STATES


@dataclass(frozen=True)
class Counted:
    """The first items of a list, and how many there are in all."""

    items: list[Operation]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.items)


@dataclass(frozen=True)
class Health:
    """The admins' view of delivery and Uplynk (docs/SPEC.md §10, §12)."""

    outbox: OutboxStats
    problems: list[str]
    last_uplynk: tuple[str, str, float] | None  # (call, status, unix time) in this process


@dataclass(frozen=True)
class HomeData:
    """Everything one user's Home shows, as stored now."""

    user_id: str
    admin: bool
    to_approve: Counted  # requests this user may decide on (not their own, not yet approved)
    awaiting_mine: Counted  # the user's own requests waiting for approvers
    approved_by: dict[str, list[str]]  # operation id -> who approved it so far
    scheduled: Counted
    recent: list[Operation]
    libraries: set[str] | Literal["*"]
    health: Health | None = None


def home_refresh(user_ids: Iterable[str | None], every: float) -> list[Owed]:
    """Outbox entries that publish these users' Homes again, at most once per `every` seconds
    each; only users who have opened their Home get one (the outbox coalesces them)."""
    users = dict.fromkeys(u for u in user_ids if u)
    return [Owed("home", "home", user_id=u, args={"every": every}) for u in users]


def home_opened(user_id: str) -> Owed:
    """The entry for an app_home_opened: published at once (a pending refresh is brought
    forward rather than doubled)."""
    return Owed("home", "home", user_id=user_id, args={"every": 0, "opened": True})


class HomeQuery:
    """Reads what a Home shows. `policy` is the live policy; `last_uplynk` reports the last
    Uplynk call this process made."""

    def __init__(
        self,
        store: OperationStore,
        policy: Any,
        groups_of: Callable[[str], set[str]],
        approvers_of: Callable[[list[Operation]], dict[str, list[str]]],
        outbox: Outbox | None = None,
        last_uplynk: Callable[[], tuple[str, str, float] | None] = lambda: None,
        shown: int = RECENT,
    ) -> None:
        self.store = store
        self.policy = policy
        self.groups_of = groups_of
        self.approvers_of = approvers_of
        self.outbox = outbox
        self.last_uplynk = last_uplynk
        self.shown = shown

    def __call__(self, user_id: str) -> HomeData:
        admin = self.policy.is_admin(user_id)
        awaiting = self._in_states([State.AWAITING_APPROVAL.value], None, AWAITING_SCAN)
        approved_by = self.approvers_of(awaiting)
        to_approve = [
            op
            for op in awaiting
            if user_id not in (op.user_id, op.confirmed_by)
            and user_id not in approved_by.get(op.id, [])
            and op.library_id
            and self.policy.may_approve(user_id, op.library_id, self.groups_of)
        ]
        mine = [op for op in awaiting if op.user_id == user_id]
        scheduled = self._in_states(sorted(SCHEDULED_STATES), user_id, self.shown)
        health = None
        if admin and self.outbox is not None:
            health = Health(self.outbox.stats(), self.outbox.problems(), self.last_uplynk())
        return HomeData(
            user_id=user_id,
            admin=admin,
            to_approve=Counted(to_approve[: self.shown], len(to_approve)),
            awaiting_mine=Counted(mine[: self.shown], len(mine)),
            approved_by=approved_by,
            scheduled=Counted(scheduled, self._count(sorted(SCHEDULED_STATES), user_id)),
            recent=self._recent(None if admin else user_id),
            libraries=self.policy.allowed_libraries(
                user_id, None, self.groups_of, any_channel=True
            ),
            health=health,
        )

    def _recent(self, user_id: str | None) -> list[Operation]:
        query = select(operations).where(operations.c.state.notin_(sorted(NOT_RECENT)))
        if user_id is not None:
            query = query.where(operations.c.user_id == user_id)
        query = query.order_by(operations.c.created_at.desc(), operations.c.id.desc())
        return self._rows(query.limit(self.shown))

    def _in_states(self, states: list[str], user_id: str | None, limit: int) -> list[Operation]:
        if not states:
            return []
        query = select(operations).where(operations.c.state.in_(states))
        if user_id is not None:
            query = query.where(operations.c.user_id == user_id)
        return self._rows(query.order_by(operations.c.created_at, operations.c.id).limit(limit))

    def _count(self, states: list[str], user_id: str) -> int:
        if not states:
            return 0
        query = select(func.count()).where(
            operations.c.state.in_(states), operations.c.user_id == user_id
        )
        with self.store.connection(begin=False) as conn:
            return int(conn.execute(query).scalar_one())

    def _rows(self, query: Any) -> list[Operation]:
        with self.store.connection(begin=False) as conn:
            rows = conn.execute(query).mappings().all()
        return [Operation.from_row(row) for row in rows]
