"""The workflow as plain code: real simulator, real store, no Slack at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.outcomes import NeedsPick, Planned, Refused, Requester
from bot.core.parsing import AddCommand, LibraryRef, parse_command
from bot.core.policy import Policy
from bot.core.workflow import Workflow
from bot.simulator import DEMO_LIBRARY_IDS
from tests.fixtures_bot import free_assets
from tests.fixtures_uplynk import make_client

MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
ALICE = Requester("U0ALICE", "T0001", "C0GENERAL")
POLICY = f"""
admins = ["U0ADMIN"]
[[allow]]
libraries = ["{MARKETING}"]
users = ["U0ALICE", "U0BOB"]
"""


class Clock:
    """A settable clock for TTL and undo-window checks."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workflow(store, simulator, clock) -> Workflow:
    client = make_client(simulator, batch_size=2)
    return Workflow(store, client, Policy.from_text(POLICY), lambda _user: set(), now=clock)


def add(library: str, *ids: str) -> AddCommand:
    command = parse_command(f'"{library}" ' + " ".join(ids))
    assert isinstance(command, AddCommand)
    return command


def test_plan_splits_new_present_and_missing(workflow, simulator) -> None:
    new = free_assets(simulator, MARKETING, 1)
    present = sorted(simulator.catalogue.library_assets(MARKETING))[:1]
    missing = "0" * 32
    planned = workflow.plan(ALICE, add("Marketing Library", *new, *present, missing))
    assert isinstance(planned, Planned)
    op = planned.operation
    assert (op.new_ids, op.present_ids, op.missing_ids) == (new, present, [missing])
    assert op.state == "pending" and op.library_id == MARKETING


def test_ambiguous_name_needs_a_pick_and_unknown_name_names_the_closest(workflow) -> None:
    picked = workflow.plan(ALICE, AddCommand(LibraryRef(name="Marketing"), ("ab" * 16,)))
    assert isinstance(picked, NeedsPick)
    assert {lib.desc for lib in picked.candidates} >= {
        "Marketing Library",
        "Marketing Library Archive",
    }
    refused = workflow.plan(ALICE, AddCommand(LibraryRef(name="Marketting Libary"), ("ab" * 16,)))
    assert isinstance(refused, Refused) and "Marketing Library" in refused.message


def test_refusal_is_recorded_as_denied(workflow, store) -> None:
    stranger = Requester("U0STRANGER", "T0001", "C0GENERAL")
    refused = workflow.plan(stranger, add("Marketing Library", "ab" * 16))
    assert isinstance(refused, Refused) and refused.operation is not None
    assert store.get(refused.operation.id).state == "denied"


def test_confirm_once_by_the_requester_or_an_admin_within_the_ttl(
    workflow, simulator, clock
) -> None:
    new = free_assets(simulator, MARKETING, 2)
    op = workflow.plan(ALICE, add("Marketing Library", *new)).operation
    assert isinstance(workflow.confirm(op.id, "U0BOB"), Refused)  # not the requester
    assert isinstance(workflow.confirm("f" * 32, "U0ALICE"), Refused)  # no such operation
    confirmed = workflow.confirm(op.id, "U0ADMIN")
    assert confirmed.state == "confirmed" and confirmed.confirmed_by == "U0ADMIN"
    assert isinstance(workflow.confirm(op.id, "U0ALICE"), Refused)  # only once
    late = workflow.plan(ALICE, add("Marketing Library", *new)).operation
    clock.moment += timedelta(seconds=901)
    refusal = workflow.confirm(late.id, "U0ALICE")
    assert isinstance(refusal, Refused) and "expired" in refusal.message
    assert workflow.store.get(late.id).state == "expired"


def test_execute_then_undo_removes_only_what_was_added(workflow, simulator) -> None:
    new = free_assets(simulator, MARKETING, 3)
    present = sorted(simulator.catalogue.library_assets(MARKETING))[:1]
    op = workflow.plan(ALICE, add("Marketing Library", *new, *present)).operation
    seen = []
    executed = workflow.execute(workflow.confirm(op.id, "U0ALICE"), lambda d, t: seen.append(d))
    assert executed.operation.state == "done"
    assert executed.operation.added_ids == new
    assert seen[0] == 0 and seen[-1] == 3
    simulator.clear_requests()
    undone = workflow.undo(op.id, "U0ALICE")
    assert undone.operation.state == "undone" and undone.operation.removed_ids == new
    removed = [r for r in simulator.requests if r.call == "remove"]
    sent = {i for r in removed for i in r.query["ids"].split(",")}
    assert sent == set(new)
    assert present[0] in simulator.catalogue.library_assets(MARKETING)
    assert isinstance(workflow.undo(op.id, "U0ALICE"), Refused)


def test_partial_failure_then_retry_sends_only_the_failed_assets(workflow, simulator) -> None:
    new = free_assets(simulator, MARKETING, 4)
    op = workflow.plan(ALICE, add("Marketing Library", *new)).operation
    simulator.faults.fail("add", 400, times=1)
    executed = workflow.execute(workflow.confirm(op.id, "U0ALICE"))
    assert executed.operation.state == "partial"
    assert executed.operation.failed_ids == new[:2]
    assert "batch 1 of 2" in executed.operation.errors[0]
    simulator.clear_requests()
    retried = workflow.retry(op.id, "U0ALICE")
    assert retried.operation.state == "done"
    sent = [r.body for r in simulator.requests if r.call == "add"]
    assert sent == [{"asset_ids": new[:2]}]
    assert set(new) <= simulator.catalogue.library_assets(MARKETING)
