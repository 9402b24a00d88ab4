"""What each approval event owes Slack (delivery.owing.Owing), without a database or Slack."""

from __future__ import annotations

from bot.core.approvals.outcomes import ApprovalView
from bot.slack.delivery.owing import NOTIFY, Owing, approval_recipients
from tests.test_escaping import operation

APPROVALS = "C0APPROVALS"
NOTIFY_CHANNEL = "C0NOTIFY"
LEAD, LEAD2 = "U0LEAD", "U0LEADTWO"


def view(approvers=(LEAD, LEAD2), groups=()) -> ApprovalView:
    op = operation("Ad Breaks", state="awaiting_approval")
    return ApprovalView(op, {}, tuple(approvers), tuple(groups), 1, 1, [], None)


def shape(entries) -> list[tuple]:
    return [(e.kind, e.template, e.channel, e.key, e.target, e.thread) for e in entries]


def test_a_request_goes_to_the_approval_channel_then_the_thread() -> None:
    owing = Owing(NOTIFY_CHANNEL, approval_channel=APPROVALS)
    entries = owing("approval_requested", view().operation, view=view())
    assert shape(entries) == [
        ("post", "approval_request", APPROVALS, f"approval:{APPROVALS}", None, None),
        ("post", "notify_parent", NOTIFY_CHANNEL, NOTIFY, None, None),
        ("post", "event", NOTIFY_CHANNEL, None, None, NOTIFY),
    ]
    assert "asked for approval to add 3 assets (needs 1 approval)" in entries[2].args["text"]


def test_without_a_channel_each_approver_gets_a_keyed_dm() -> None:
    owing = Owing(None, approvers=lambda v: approval_recipients(v, lambda g: set(), ()))
    entries = owing("approval_requested", view().operation, view=view())
    assert shape(entries) == [
        ("dm", "approval_request", LEAD, f"approval:{LEAD}", None, None),
        ("dm", "approval_request", LEAD2, f"approval:{LEAD2}", None, None),
    ]


def test_dm_recipients_fall_back_to_group_members_then_admins_never_the_requester() -> None:
    requester = view().operation.user_id
    only_groups = view(approvers=(), groups=("S0LEADS",))
    members = {"S0LEADS": {"U0GROUP", requester}}
    assert approval_recipients(only_groups, members.__getitem__, ()) == ["U0GROUP"]
    nobody = view(approvers=(requester,))
    assert approval_recipients(nobody, lambda g: set(), ("U0ADMIN", requester)) == ["U0ADMIN"]


def test_updates_target_every_copy_and_endings_tell_the_requester_and_thread() -> None:
    owing = Owing(NOTIFY_CHANNEL, approval_channel=APPROVALS)
    op = view().operation
    targets = [f"approval:{LEAD}", f"approval:{LEAD2}"]
    interim = owing("approval_approved", op, by=LEAD, got=1, needed=2, targets=targets)
    assert shape(interim)[:2] == [
        ("update", "approval_request", LEAD, None, f"approval:{LEAD}", None),
        ("update", "approval_request", LEAD2, None, f"approval:{LEAD2}", None),
    ]
    assert interim[-1].args["text"] == f"<@{LEAD}> approved (1 of 2)"

    denied = owing("approval_rejected", op, by=LEAD, targets=targets[:1])
    assert shape(denied) == [
        ("update", "approval_request", LEAD, None, f"approval:{LEAD}", None),
        ("dm", "approval_closed", op.user_id, None, None, None),
        ("post", "notify_parent", NOTIFY_CHANNEL, NOTIFY, None, None),
        ("post", "approval_status", NOTIFY_CHANNEL, None, None, NOTIFY),
        ("update", "notify_parent", NOTIFY_CHANNEL, None, NOTIFY, None),
    ]
    assert denied[1].args == {"via_response_url": True}
    withdrawn = owing("approval_withdrawn", op, targets=targets[:1])
    assert "approval_closed" not in [e.template for e in withdrawn]  # the requester clicked


def test_only_an_operation_that_asked_for_approval_updates_its_parent_after_the_run() -> None:
    op = operation("Ad Breaks", state="done")
    plain = Owing(NOTIFY_CHANNEL)("executed", op, state="done", added=1, failed=0)
    assert [e for e in plain if e.kind == "update"] == []
    asked = Owing(NOTIFY_CHANNEL, asked=lambda o: True)("executed", op, state="done", added=1)
    assert shape(asked)[-1] == ("update", "notify_parent", NOTIFY_CHANNEL, None, NOTIFY, None)
