"""Approval requests and approvals (docs/SPEC.md §7), stored beside the operations table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.operation import Operation, State
from bot.core.store import OperationStore
from bot.core.tables import approval_requests, approvals, metadata, operations

__all__ = ["ApprovalRequest", "ApprovalStore"]


@dataclass(frozen=True)
class ApprovalRequest:
    """An operation's approval request: its messages and who approved, oldest first."""

    operation_id: str
    titles: dict[str, str] = field(default_factory=dict)
    messages: list[tuple[str, str]] = field(default_factory=list)
    requester_url: str | None = None
    approved_by: list[str] = field(default_factory=list)


class ApprovalStore:
    """Reads and writes the two approval tables through an OperationStore's engine."""

    def __init__(self, store: OperationStore) -> None:
        self.store = store

    def create_schema(self) -> None:
        metadata.create_all(
            self.store.engine, tables=[approval_requests, approvals], checkfirst=True
        )

    def open(self, operation_id: str, titles: dict[str, str]) -> None:
        """Start the request row (idempotent: a second call keeps the first)."""
        try:
            with self.store.connection() as conn:
                conn.execute(
                    approval_requests.insert().values(
                        operation_id=operation_id, titles=titles, messages=[]
                    )
                )
        except IntegrityError:
            pass

    def get(self, operation_id: str) -> ApprovalRequest | None:
        with self.store.connection(begin=False) as conn:
            row = (
                conn.execute(
                    select(approval_requests).where(
                        approval_requests.c.operation_id == operation_id
                    )
                )
                .mappings()
                .first()
            )
            who = self._approvers(conn, operation_id)
        if row is None:
            return None
        return ApprovalRequest(
            operation_id=operation_id,
            titles=dict(row["titles"] or {}),
            messages=[(m[0], m[1]) for m in row["messages"] or []],
            requester_url=row["requester_url"],
            approved_by=who,
        )

    def approvers_of(self, operation_ids: list[str]) -> dict[str, list[str]]:
        """Who approved each of these operations (operations nobody approved are absent)."""
        if not operation_ids:
            return {}
        query = (
            select(approvals.c.operation_id, approvals.c.approver)
            .where(approvals.c.operation_id.in_(operation_ids))
            .order_by(approvals.c.approved_at, approvals.c.approver)
        )
        found: dict[str, list[str]] = {}
        with self.store.connection(begin=False) as conn:
            for operation_id, approver in conn.execute(query):
                found.setdefault(operation_id, []).append(approver)
        return found

    def record(
        self,
        operation_id: str,
        approver: str,
        at: datetime,
        enqueue: Callable[[list[str]], Iterable[Any]] | None = None,
    ) -> list[str] | str:
        """Record an approval while the operation awaits one; returns everyone who approved.

        One transaction: touching the operation's row first (only while it is
        awaiting_approval) locks it, so an approval and a decision (deny, expiry, the final
        approve) on the same operation are serialized. Returns "not_awaiting" or "again"
        instead when the approval cannot be recorded. ``enqueue(approved_by)``: the outbox
        entries (bot.core.delivery.outbox.Owed) this approval owes, queued in the same transaction.
        """
        touch = (
            operations.update()
            .where(operations.c.id == operation_id, operations.c.state == State.AWAITING_APPROVAL)
            .values(updated_at=at)
        )
        try:
            with self.store.connection() as conn:
                if conn.execute(touch).rowcount != 1:
                    return "not_awaiting"
                if approver in self._approvers(conn, operation_id):
                    return "again"
                conn.execute(
                    approvals.insert().values(
                        operation_id=operation_id, approver=approver, approved_at=at
                    )
                )
                approved_by = self._approvers(conn, operation_id)
                queued = self.store._enqueue(conn, enqueue(approved_by)) if enqueue else 0
        except IntegrityError:  # the same approver's other click won the insert
            return "again"
        if queued:
            self.store.notify_enqueued()
        return approved_by

    def expire_awaiting(
        self,
        requested_before: datetime,
        now: datetime,
        owed: Callable[[Operation], Iterable[Any]] | None = None,
    ) -> list[Operation]:
        """Move requests made before `requested_before` to expired; returns those moved.
        ``owed(operation)``: the outbox entries each expiry owes, queued with it."""
        where = (
            operations.c.state == State.AWAITING_APPROVAL,
            operations.c.confirmed_at < requested_before,
        )
        with self.store.connection(begin=False) as conn:
            ids = conn.execute(select(operations.c.id).where(*where)).scalars().all()
        moved = []
        for operation_id in ids:
            waiting = self.store.get(operation_id) if owed else None
            operation = self.store.transition(
                operation_id,
                State.AWAITING_APPROVAL,
                State.EXPIRED,
                enqueue=owed(waiting) if owed and waiting else (),
                updated_at=now,
                finished_at=now,
            )
            if operation is not None:  # another instance's sweep may have won it
                moved.append(operation)
        return moved

    @staticmethod
    def _approvers(conn: Any, operation_id: str) -> list[str]:
        query = (
            select(approvals.c.approver)
            .where(approvals.c.operation_id == operation_id)
            .order_by(approvals.c.approved_at, approvals.c.approver)
        )
        return list(conn.execute(query).scalars())
