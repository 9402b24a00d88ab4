"""Recording an approval looks user groups up (a Slack call) outside its database transaction
(docs/SPEC.md §16), and still counts an approval that lands between the look-up and the write."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.core.approvals.outcomes import ApprovalEvent, AwaitingApproval
from bot.core.approvals.store import ApprovalStore
from bot.core.outcomes import Planned, Requester
from bot.core.parsing import AddCommand, parse_command
from bot.core.policy import Policy
from bot.core.store import OperationStore
from bot.core.workflow import Workflow
from bot.simulator import DEMO_LIBRARY_IDS
from tests.fixtures_bot import free_assets
from tests.fixtures_uplynk import make_client

MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
ALICE = Requester("U0ALICE", "T0001", "C0GENERAL")
LEADS = ("U0LEADONE", "U0LEADTWO", "U0LEADTHREE")
POLICY = f"""
[[allow]]
libraries = ["{MARKETING}"]
users = ["U0ALICE"]

[[protect]]
libraries = ["{MARKETING}"]
approver_usergroups = ["S0LEADS"]
approvals = 3
"""
PROBE_WAIT = 5.0  # seconds: a write blocked this long is waiting for our transaction


class Groups:
    """groups_of for the workflow. Each call stands for a Slack call, and checks that no
    transaction of ours holds the operation's row meanwhile: another connection writes that
    row, and must get through."""

    def __init__(self, database_url: str) -> None:
        self.other = OperationStore(database_url)
        self.operation_id = ""
        self.calls: list[str] = []
        self.inside: list[str] = []  # calls made while the row was held
        self.on_call: dict[str, object] = {}  # user -> a callable run on their look-up

    def __call__(self, user: str) -> set[str]:
        self.calls.append(user)
        if self.operation_id:
            wrote = threading.Event()

            def probe() -> None:
                self.other.update(self.operation_id, error=None)
                wrote.set()

            thread = threading.Thread(target=probe, daemon=True)
            thread.start()
            if not wrote.wait(PROBE_WAIT):
                self.inside.append(user)
        action = self.on_call.pop(user, None)
        if callable(action):
            action()
        return {"S0LEADS"} if user in LEADS else set()


@pytest.fixture
def groups(migrated_database_url: str, store) -> Iterator[Groups]:
    found = Groups(migrated_database_url)
    yield found
    found.other.dispose()


def test_approvals_look_groups_up_outside_the_transaction(store, simulator, groups) -> None:
    events: list[tuple[str, dict]] = []

    def owed(event: str, operation, **facts) -> list:
        events.append((event, facts))
        return []

    workflow = Workflow(store, make_client(simulator), Policy.from_text(POLICY), groups, owed=owed)
    assets = free_assets(simulator, MARKETING, 1)
    command = parse_command(f'"Marketing Library" {assets[0]}')
    assert isinstance(command, AddCommand)
    planned = workflow.plan(ALICE, command)
    assert isinstance(planned, Planned) and planned.approval is not None
    assert planned.approval.needed == 3
    waiting = workflow.confirm(planned.operation.id, ALICE.user_id)
    assert isinstance(waiting, AwaitingApproval)
    op_id = waiting.operation.id
    groups.operation_id = op_id

    first = workflow.approvals.approve(op_id, LEADS[0])
    assert isinstance(first, ApprovalEvent) and first.kind == "approved"
    assert ("approval_approved", 1, 3) in [
        (e, f.get("got"), f.get("needed")) for e, f in events if e == "approval_approved"
    ]

    # While the second lead's groups are looked up, the third lead's approval lands (another
    # instance's click): the second's transaction meets an approver it did not look up, is
    # rolled back, looks them up, and counts all three.
    approvals = ApprovalStore(groups.other)
    groups.on_call[LEADS[1]] = lambda: approvals.record(op_id, LEADS[2], workflow.now())
    second = workflow.approvals.approve(op_id, LEADS[1])
    assert isinstance(second, ApprovalEvent) and second.kind == "ready", second
    assert second.run is not None and second.run.state == "confirmed"
    assert sorted(second.view.approved_by) == sorted(LEADS)
    assert LEADS[2] in groups.calls  # looked up after the retry
    assert groups.inside == [], f"a Slack call while the row was held: {groups.inside}"
    assert [e for e, _ in events].count("approval_approved") == 1  # the interim one only
    assert [e for e, _ in events if e == "approval_ready"]
