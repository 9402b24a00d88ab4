"""The in-process run registry is keyed by run token (issue 20, Build 8): a stale run of an
operation that finishes late leaves its replacement's entry, and so its lease renewals, alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from bot.core.heartbeat import Heartbeat
from bot.core.operation import Operation, State
from bot.core.outcomes import Executed, Planned, Requester
from bot.core.parsing import AddCommand, parse_command
from bot.core.policy import Policy
from bot.core.workflow import Workflow
from bot.simulator import DEMO_LIBRARY_IDS
from tests.fixtures_bot import free_assets
from tests.fixtures_uplynk import make_client

MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
ALICE = Requester("U0ALICE", "T0001", "C0GENERAL")
POLICY = f"""
[[allow]]
libraries = ["{MARKETING}"]
users = ["U0ALICE"]
"""
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
WAIT = 20  # seconds: a deadline, never a pause


class Gate:
    """A progress callback that holds its run at the start until opened (runs wait for their
    progress reports before finishing, so the run stays in flight meanwhile)."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __call__(self, done: int, total: int) -> None:
        self.reached.set()
        assert self.opened.wait(WAIT), "the test never opened the gate"


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def test_a_stale_run_finishing_late_keeps_its_replacements_lease_renewed(store, simulator) -> None:
    workflow = Workflow(
        store, make_client(simulator, batch_size=2), Policy.from_text(POLICY), lambda _: set()
    )
    heartbeat = Heartbeat(workflow, lease_seconds=60, on_interrupted=lambda found: None)
    assets = free_assets(simulator, MARKETING, 1)
    command = parse_command(f'"Marketing Library" {assets[0]}')
    assert isinstance(command, AddCommand)
    planned = workflow.plan(ALICE, command)
    assert isinstance(planned, Planned)
    confirmed = workflow.confirm(planned.operation.id, ALICE.user_id)
    assert isinstance(confirmed, Operation)
    op_id = confirmed.id

    # Run A sends its batch, then is held; the sweep presumes it dead and takes it back.
    gate_a = Gate()
    run_a, result_a = in_thread(lambda: workflow.execute(confirmed, gate_a))
    assert gate_a.reached.wait(WAIT)
    token_a = store.get(op_id).run_token
    assert workflow.running_tokens() == {token_a: op_id}
    [taken] = store.interrupt_running()
    assert taken.id == op_id and taken.state == State.INTERRUPTED

    # Run B (the resume) takes the operation over in this same process, and is held too.
    gate_b = Gate()
    run_b, result_b = in_thread(lambda: workflow.resume(op_id, gate_b))
    assert gate_b.reached.wait(WAIT)
    token_b = store.get(op_id).run_token
    assert token_b not in (None, token_a)
    assert workflow.running_tokens() == {token_a: op_id, token_b: op_id}

    # A finishes late: it learns it was superseded, and removes its own entry only.
    gate_a.opened.set()
    run_a.join(WAIT)
    [executed_a] = result_a
    assert isinstance(executed_a, Executed) and executed_a.superseded
    assert workflow.running_tokens() == {token_b: op_id}
    assert workflow.running_here() == [op_id]

    # B's lease is still renewed: even from long ago, the beat renews it before it sweeps.
    assert store.save(op_id, run_token=token_b, lease_at=LONG_AGO)
    assert heartbeat.beat() == []
    renewed = store.get(op_id)
    assert renewed.state == State.RUNNING and renewed.run_token == token_b
    assert renewed.lease_at is not None and renewed.lease_at > LONG_AGO

    gate_b.opened.set()
    run_b.join(WAIT)
    [executed_b] = result_b
    assert isinstance(executed_b, Executed) and not executed_b.superseded
    assert executed_b.operation.state == State.DONE
    assert executed_b.operation.added_ids == assets
    assert workflow.running_tokens() == {} and workflow.running_here() == []
    assert len([r for r in simulator.requests if r.call == "add"]) == 1
