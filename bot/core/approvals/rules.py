"""The two-person rule (docs/SPEC.md §7): request, approve, deny and expire, with no Slack in it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.core.approvals.outcomes import ApprovalEvent, ApprovalView, AwaitingApproval
from bot.core.approvals.store import ApprovalStore
from bot.core.delivery.outbox import Outbox
from bot.core.operation import Operation, State
from bot.core.outcomes import Refused
from bot.core.phrases import already_handled, duration
from bot.core.policy import Policy
from bot.core.store import OperationStore

log = logging.getLogger(__name__)

# Titles shown in an approval request (the rest are counted).
SHOWN_TITLES = 10
#: Outbox keys of an approval request's messages: REQUEST_KEY + channel (or approver's id).
REQUEST_KEY = "approval:"
NO_OPERATION = "That button does not belong to any operation I know; nothing was done."
#: Decided otherwise than by enough approvals: a late approval finds nothing to approve.
CLOSED = (State.REJECTED, State.EXPIRED, State.CANCELLED, State.DENIED)
#: Tries at recording an approval while other approvals keep landing (see Approvals._record).
MAX_RECORD_ATTEMPTS = 5


class _Unresolved(Exception):
    """An approver whose user groups were not looked up before the transaction."""


class Approvals:
    """Approval requests for operations on `[[protect]]`ed libraries."""

    def __init__(
        self,
        operations: OperationStore,
        policy: Policy,
        groups_of: Callable[[str], set[str]],
        owed: Callable[..., list],
        now: Callable[[], datetime],
        ttl: int = 86400,
    ) -> None:
        self.operations = operations
        # The live policy (a PolicyHolder in the app): reloaded behind this object.
        self.policy = policy
        self.groups_of = groups_of
        # owed(event, operation, **facts) -> the outbox entries the event owes (see Workflow).
        self.owed = owed
        self.now = now
        self.ttl = ttl
        self.store = ApprovalStore(operations)

    def required(self, operation: Operation) -> bool:
        return bool(self.policy.protections_for(operation.library_id))

    # -- the requester's side ---------------------------------------------------------------

    def request(self, operation: Operation, user_id: str) -> AwaitingApproval | Refused:
        """Park a confirmed operation until approvers decide (its TTL counts from now).

        The request's messages are queued with the state change (docs/SPEC.md §12); they are
        rendered when delivered, from the request row, which is therefore written first.
        """
        self.store.open(operation.id, self._titles(operation))
        waiting = self.operations.transition(
            operation.id,
            State.PENDING,
            State.AWAITING_APPROVAL,
            enqueue=self.owed("approval_requested", operation, view=self.view(operation)),
            confirmed_by=user_id,
            confirmed_at=self.now(),
        )
        if waiting is None:
            return Refused(already_handled(self.operations.get(operation.id) or operation))
        return AwaitingApproval(self.view(waiting))

    def targets(self, operation_id: str) -> list[str]:
        """Keys of the request's messages (one per channel or approver's DM) to update."""
        return Outbox(self.operations).keys(operation_id, REQUEST_KEY)

    def closing(self, operation: Operation, event: str, **facts: Any) -> list:
        """What ending the request owes (event approval_rejected, _expired or _withdrawn):
        its messages updated, the requester told, the thread's story."""
        return self.owed(event, operation, targets=self.targets(operation.id), **facts)

    # -- the approvers' side ----------------------------------------------------------------

    def approve(self, operation_id: str, user_id: str) -> ApprovalEvent | Refused:
        """Record an approval; with enough distinct approvers, claim the operation to run.

        The last approval checks the requester's `[[allow]]` again, against the policy in
        force now (docs/SPEC.md §7): a requester who lost the right gets nothing run (the
        operation ends `denied`), and both sides are told.
        """
        operation = self._decidable(operation_id, user_id, "approve")
        if not isinstance(operation, Operation):
            return operation
        targets = self.targets(operation.id)
        recorded = self._record(operation, user_id, targets)
        if recorded == "again":
            return Refused(
                "You have already approved this request; an approval counts once per person. "
                + self._waiting_for(operation)
            )
        if isinstance(recorded, str):  # decided between our read and our write
            return Refused(self._closed(self.operations.get(operation.id), user_id))
        missing = self.policy.approvals_missing(operation.library_id, recorded, self.groups_of)
        if missing > 0:
            return ApprovalEvent("approved", self.view(operation), user_id)
        lost = self._requester_lost_right(operation)
        # docs/SPEC.md §15: approved before its time, a scheduled add waits for the time;
        # approved after it, it runs now.
        waits = operation.run_at is not None and operation.run_at > self.now()
        if lost is not None:
            moved = self.operations.transition(
                operation.id,
                State.AWAITING_APPROVAL,
                State.DENIED,
                enqueue=self.closing(operation, "approval_revoked", approved_by=recorded),
                denial_reason=lost,
            )
        else:
            moved = self.operations.transition(
                operation.id,
                State.AWAITING_APPROVAL,
                State.SCHEDULED if waits else State.CONFIRMED,
                enqueue=self.owed(
                    "approval_ready",
                    operation,
                    approved_by=recorded,
                    targets=targets,
                    run_at=operation.run_at if waits else None,
                ),
                confirmed_at=operation.confirmed_at,
            )
        if moved is None:
            current = self.operations.get(operation.id) or operation
            if current.state in CLOSED:
                return Refused(self._closed(current, user_id))
            # Another approver's click completed the approvals and runs it.
            return ApprovalEvent("approved", self.view(current), user_id)
        if moved.state == State.DENIED:
            return ApprovalEvent("revoked", self.view(moved), user_id)
        if moved.state == State.SCHEDULED:
            return ApprovalEvent("scheduled", self.view(moved), user_id)
        return ApprovalEvent("ready", self.view(moved), user_id, run=moved)

    def _record(self, operation: Operation, user_id: str, targets: list[str]) -> list[str] | str:
        """store.record with the interim message (while more approvals are needed) queued in
        its transaction, and no Slack call inside it (docs/SPEC.md §16): the approvers' user
        groups are looked up first; should another approval land between the look-up and
        the write, the transaction is rolled back, that approver looked up, and it is tried
        again."""
        policy = self.policy.current()  # no look at the policy file inside the transaction
        groups: dict[str, set[str]] = {}
        for attempt in range(MAX_RECORD_ATTEMPTS):
            voters = self.store.approvers_of([operation.id]).get(operation.id, [])
            for who in [*voters, user_id]:
                if who not in groups:
                    groups[who] = set(self.groups_of(who))
            last = attempt == MAX_RECORD_ATTEMPTS - 1

            def interim(approved_by: list[str], last: bool = last) -> list:
                unknown = [who for who in approved_by if who not in groups]
                if unknown and not last:
                    raise _Unresolved(unknown)
                missing = policy.approvals_missing(
                    operation.library_id, approved_by, lambda who: groups.get(who, set())
                )
                if missing <= 0:  # the final approval is queued with its decision
                    return []
                got = len(approved_by)
                return self.owed(
                    "approval_approved",
                    operation,
                    by=user_id,
                    got=got,
                    needed=got + missing,
                    targets=targets,
                )

            try:
                return self.store.record(operation.id, user_id, self.now(), interim)
            except _Unresolved:
                continue
        raise AssertionError("unreachable: the last attempt does not raise _Unresolved")

    def _requester_lost_right(self, operation: Operation) -> str | None:
        """Why the requester may no longer add here under the policy in force, or None."""
        decision = self.policy.check(
            operation.user_id, operation.library_id or "", operation.channel_id, self.groups_of
        )
        return None if decision.allowed else decision.reason

    def deny(self, operation_id: str, user_id: str) -> ApprovalEvent | Refused:
        """Reject the request: nothing will be added."""
        operation = self._decidable(operation_id, user_id, "deny")
        if not isinstance(operation, Operation):
            return operation
        rejected = self.operations.transition(
            operation.id,
            State.AWAITING_APPROVAL,
            State.REJECTED,
            enqueue=self.closing(operation, "approval_rejected", by=user_id),
            rejected_by=user_id,
        )
        if rejected is None:
            return Refused(self._closed(self.operations.get(operation.id), user_id))
        return ApprovalEvent("rejected", self.view(rejected), user_id)

    def expire_stale(self) -> list[ApprovalEvent]:
        """The lease sweep: requests older than the TTL become expired (each reported once)."""
        now = self.now()
        moved = self.store.expire_awaiting(
            now - timedelta(seconds=self.ttl),
            now,
            owed=lambda operation: self.closing(operation, "approval_expired"),
        )
        return [ApprovalEvent("expired", self.view(operation)) for operation in moved]

    # -- reading ------------------------------------------------------------------------------

    def view(self, operation: Operation) -> ApprovalView:
        request = self.store.get(operation.id)
        library = operation.library_id
        rules = self.policy.protections_for(library)
        approved_by = request.approved_by if request else []
        confirmed_at = operation.confirmed_at
        expires = confirmed_at + timedelta(seconds=self.ttl) if confirmed_at else None
        return ApprovalView(
            operation=operation,
            titles=request.titles if request else {},
            approvers=tuple(sorted(set().union(*(r.approvers for r in rules)))),
            approver_groups=tuple(sorted(set().union(*(r.approver_usergroups for r in rules)))),
            needed=self.policy.approvals_needed(library),
            missing=self.policy.approvals_missing(library, approved_by, self.groups_of),
            approved_by=approved_by,
            expires_at=expires,
        )

    def approvers_of(self, operations: list[Operation]) -> dict[str, list[str]]:
        return self.store.approvers_of([o.id for o in operations])

    # -- internals ----------------------------------------------------------------------------

    def _decidable(
        self, operation_id: str, user_id: str, verb: str
    ) -> Operation | ApprovalEvent | Refused:
        """The awaiting operation this user may decide on now, or why not."""
        operation = self.operations.get(operation_id) if operation_id else None
        if operation is None or not operation.library_id:
            return Refused(NO_OPERATION)
        if user_id in (operation.user_id, operation.confirmed_by):
            return Refused(
                f"You cannot {verb} your own request: nobody approves their own operation, "
                "admins included. Another approver must decide; nothing was done."
            )
        # A reload may have removed the [[protect]] covering a waiting request: admins, who
        # approve every protected library, can still decide it (docs/SPEC.md §7).
        unprotected = not self.required(operation)
        if not (
            self.policy.may_approve(user_id, operation.library_id, self.groups_of)
            or (unprotected and self.policy.is_admin(user_id))
        ):
            why = "This library is no longer protected: " if unprotected else ""
            return Refused(
                f"{why}Only {self._who_may(operation)} can approve or deny this request; "
                "nothing was done."
            )
        if operation.state != State.AWAITING_APPROVAL:
            return Refused(self._closed(operation, user_id))
        assert operation.confirmed_at is not None  # set on the way to AWAITING_APPROVAL
        if self.now() - operation.confirmed_at > timedelta(seconds=self.ttl):
            expired = self.operations.transition(
                operation.id,
                State.AWAITING_APPROVAL,
                State.EXPIRED,
                enqueue=self.closing(operation, "approval_expired"),
            )
            if expired is None:
                return Refused(self._closed(self.operations.get(operation.id), user_id))
            return ApprovalEvent("expired", self.view(expired), user_id)
        return operation

    def _closed(self, operation: Operation | None, user_id: str) -> str:
        """Why a decision on a request that is no longer waiting does nothing."""
        if operation is None:
            return NO_OPERATION
        state = operation.state
        if state == State.REJECTED:
            return f"This request was denied by <@{operation.rejected_by}>; nothing more was done."
        if state == State.EXPIRED:
            return self.too_late()
        if state == State.CANCELLED:
            by = operation.rejected_by or operation.user_id  # an admin, or the requester
            return f"<@{by}> withdrew this request; nothing more was done."
        if state == State.DENIED:
            return (
                f"This request was approved, but <@{operation.user_id}> may no longer add to "
                "this library; nothing was run, and nothing more was done."
            )
        if state == State.PENDING:
            return "This operation has not been sent for approval; nothing was done."
        approved_by = self.store.approvers_of([operation.id]).get(operation.id, [])
        if user_id in approved_by:
            return "You have already approved this request; nothing more was done."
        if approved_by:
            names = ", ".join(f"<@{a}>" for a in approved_by)
            return f"This request was already approved by {names}; nothing more was done."
        return already_handled(operation)

    def too_late(self) -> str:
        return (
            f"This approval request expired (requests last {duration(self.ttl)}); "
            "nothing was added, and this click did nothing."
        )

    def withdraw(self, operation: Operation, user_id: str) -> Operation | None:
        """Withdraw a waiting request (the requester's Cancel, or an admin's): approvers are
        told and, when an admin withdrew it, so is the requester (docs/SPEC.md §7)."""
        return self.operations.transition(
            operation.id,
            State.AWAITING_APPROVAL,
            State.CANCELLED,
            enqueue=self.closing(operation, "approval_withdrawn", by=user_id),
            rejected_by=user_id if user_id != operation.user_id else None,
        )

    def _who_may(self, operation: Operation) -> str:
        rules = self.policy.protections_for(operation.library_id)
        names = sorted({f"<@{u}>" for r in rules for u in r.approvers})
        names += sorted(
            {f"members of <!subteam^{g}>" for r in rules for g in r.approver_usergroups}
        )
        return ", ".join(names) + " or an admin" if names else "an admin"

    def _waiting_for(self, operation: Operation) -> str:
        missing = self.policy.approvals_missing(
            operation.library_id,
            self.store.approvers_of([operation.id]).get(operation.id, []),
            self.groups_of,
        )
        return f"Waiting for {missing} more." if missing > 0 else ""

    def _titles(self, operation: Operation) -> dict[str, str]:
        """The shown assets' titles, as the preview stored them (no second look-up)."""
        shown = operation.new_ids[:SHOWN_TITLES]
        return {a: operation.asset_titles[a] for a in shown if operation.asset_titles.get(a)}
