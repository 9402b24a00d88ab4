"""The approval messages (docs/SPEC.md §7): the request, its status, the requester's notices."""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.core.approvals.outcomes import ApprovalView
from bot.core.operation import State
from bot.slack.blocks import (
    CANCEL,
    SHOWN_IDS,
    Message,
    asset_name,
    button,
    context,
    info,
    make_message,
    name,
    plural,
    section,
    slack_date,
)

APPROVE = "addtolib_approve"
DENY = "addtolib_deny"

APPROVED_STATES = (
    State.CONFIRMED,
    State.RUNNING,
    State.DONE,
    State.PARTIAL,
    State.FAILED,
    State.INTERRUPTED,
    State.UNDONE,
)


def who_may_approve(view: ApprovalView) -> str:
    names = [f"<@{u}>" for u in view.approvers if u != view.operation.user_id]
    names += [f"members of <!subteam^{g}>" for g in view.approver_groups]
    return ", ".join(names) + " or an admin" if names else "an admin"


def needs_approval(view: ApprovalView) -> str:
    """What a preview says of a protected library before anyone clicks (docs/SPEC.md §7)."""
    return (
        f":lock: This library is protected: the change needs {plural(view.needed, 'approval')} "
        f"by {who_may_approve(view)} before anything is added."
    )


def people(users: Iterable[str]) -> str:
    return ", ".join(f"<@{u}>" for u in users) or "nobody"


def _asset_lines(view: ApprovalView) -> str:
    op = view.operation
    lines = []
    for asset_id in op.new_ids[:SHOWN_IDS]:
        lines.append(f"• {asset_name(asset_id, view.titles)}")
    if len(op.new_ids) > SHOWN_IDS:
        lines.append(f"… and {len(op.new_ids) - SHOWN_IDS} more")
    if op.present_ids:
        lines.append(f"Already in the library (skipped): {len(op.present_ids)}")
    if op.missing_ids:
        lines.append(f"Not found in Uplynk (skipped): {len(op.missing_ids)}")
    return "\n".join(lines)


def approval_status(view: ApprovalView) -> str:
    """One line: where the request stands (who approved or decided)."""
    op = view.operation
    if op.state == State.AWAITING_APPROVAL:
        if view.approved_by:
            got = len(view.approved_by)
            return (
                f":ballot_box_with_check: Approved so far by {people(view.approved_by)} "
                f"({got} of {got + view.missing}); waiting for {view.missing} more."
            )
        if not view.needed:  # a reload removed its [[protect]]: an admin decides it
            return ":hourglass_flowing_sand: No longer protected; waiting for an admin's decision."
        return f":hourglass_flowing_sand: Waiting for {plural(view.needed, 'approval')}."
    if op.state in APPROVED_STATES:
        return f":white_check_mark: Approved by {people(view.approved_by)}."
    if op.state == State.REJECTED:
        return f":no_entry: Denied by <@{op.rejected_by}>; nothing was added."
    if op.state == State.EXPIRED:
        return ":hourglass: Expired: not approved in time; nothing was added."
    if op.state == State.CANCELLED:
        by = op.rejected_by or op.user_id  # an admin, or the requester
        return f":leftwards_arrow_with_hook: Withdrawn by <@{by}>; nothing was added."
    if op.state == State.DENIED:
        return (
            f":no_entry: Approved by {people(view.approved_by)}, but <@{op.user_id}> may no "
            "longer add to this library; nothing was added."
        )
    return f"State: `{op.state}`."


def approval_request(view: ApprovalView) -> Message:
    """The message approvers see; buttons only while it is waiting for a decision."""
    op = view.operation
    shown = name(op.library_name)
    count = plural(len(op.new_ids), "asset")
    head = (
        f":lock: *Approval needed*: <@{op.user_id}> asks to add *{count}* to *{shown}* "
        f"(`{name(op.library_id)}`) from <#{op.channel_id}>."
    )
    blocks: list[Block] = [section(head), section(_asset_lines(view) or "(no assets)")]
    expires = f" · expires {slack_date(view.expires_at)}" if view.expires_at else ""
    blocks.append(
        context(
            f"Needs {plural(view.needed, 'approval')} from {who_may_approve(view)} "
            f"(not the requester){expires} · operation `{op.id}`"
        )
    )
    blocks.append(section(approval_status(view)))
    if op.state == State.AWAITING_APPROVAL:
        blocks.append(
            ActionsBlock(
                elements=[
                    button("Approve", APPROVE, op.id, style="primary"),
                    button("Deny", DENY, op.id, style="danger"),
                ]
            )
        )
    text = f"Approval needed: <@{op.user_id}> asks to add {count} to {shown}"
    if op.state != State.AWAITING_APPROVAL:
        text = f"Approval request for {shown}: {op.state}"
    return make_message(text, blocks)


def awaiting_approval(view: ApprovalView) -> Message:
    """The requester's confirmation, replaced while approvers decide (with Cancel)."""
    op = view.operation
    shown = name(op.library_name)
    text = (
        f":hourglass_flowing_sand: Waiting for approval by {who_may_approve(view)} to add "
        f"*{plural(len(op.new_ids), 'asset')}* to *{shown}*. Nothing has been added yet."
    )
    if view.expires_at:
        text += f" The request expires {slack_date(view.expires_at)}."
    return make_message(
        f"Waiting for approval to add to {shown}",
        [
            section(text),
            ActionsBlock(elements=[button("Cancel request", CANCEL, op.id)]),
        ],
    )


def approval_closed(view: ApprovalView) -> Message:
    """Tells the requester that their request was denied, expired or withdrawn, or approved
    after they lost the right to add there (docs/SPEC.md §7)."""
    op = view.operation
    shown = name(op.library_name)
    count = plural(len(op.new_ids), "asset")
    if op.state == State.REJECTED:
        text = f":no_entry: <@{op.rejected_by}> denied your request to add {count} to *{shown}*"
    elif op.state == State.EXPIRED:
        text = f":hourglass: Your request to add {count} to *{shown}* expired unapproved"
    elif op.state == State.DENIED:
        text = (
            f":no_entry: Your request to add {count} to *{shown}* was approved by "
            f"{people(view.approved_by)}, but you may no longer add to that library "
            f"({op.denial_reason or 'the permission policy changed'})"
        )
    elif op.rejected_by and op.rejected_by != op.user_id:
        text = (
            f":leftwards_arrow_with_hook: <@{op.rejected_by}> withdrew your request to add "
            f"{count} to *{shown}*"
        )
    else:
        text = f"Your request to add {count} to *{shown}* was withdrawn"
    return info(f"{text}; nothing was added.")
