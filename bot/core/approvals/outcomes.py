"""What approvals answer (docs/SPEC.md §7): a request's view, waiting, and each decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.operation import Operation


@dataclass(frozen=True)
class ApprovalView:
    """What an approval request shows (docs/SPEC.md §7): operation, who decides, who approved."""

    operation: Operation
    titles: dict[str, str]
    approvers: tuple[str, ...]
    approver_groups: tuple[str, ...]
    needed: int
    missing: int
    approved_by: list[str]
    expires_at: datetime | None


@dataclass(frozen=True)
class AwaitingApproval:
    """confirm() on a protected library: nothing ran; the operation waits for approvers."""

    view: ApprovalView

    @property
    def operation(self) -> Operation:
        return self.view.operation


@dataclass(frozen=True)
class ApprovalEvent:
    """An Approve, Deny or expiry that changed an approval request.

    kind: "approved" (recorded; more approvals needed, or another click runs it), "ready"
    (enough approvals: `run` is the confirmed operation to execute), "scheduled" (enough
    approvals before a scheduled add's time: it runs at the time), "revoked" (enough
    approvals, but the requester lost their `[[allow]]`: denied, nothing runs), "rejected" or
    "expired".
    """

    kind: str
    view: ApprovalView
    by: str | None = None
    run: Operation | None = None
