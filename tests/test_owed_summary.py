"""A run never queues a second summary (docs/SPEC.md §16): the owed entries of resumed and
retried runs, against the store that records which operations were summarized."""

from __future__ import annotations

from bot.core.delivery.outbox import Outbox
from bot.core.store import OperationStore
from bot.slack.delivery.owing import Owing

FACTS = {"state": "done", "added": 1, "failed": 0}


def _summaries(store: OperationStore, op_id: str) -> int:
    return sum(e.template == "summary" for e in Outbox(store).entries(op_id))


def _cut_off_and_resumed(store: OperationStore, op_id: str, from_state: str):
    store.transition(op_id, from_state, "running")
    store.transition(op_id, "running", "interrupted")
    return store.transition(op_id, "interrupted", "running")


def test_a_run_resumed_while_its_first_summary_waits_queues_no_second(
    store: OperationStore,
) -> None:
    owing = Owing("C0NOTIFY")
    op = store.create(user_id="U1", channel_id="C1", state="running", new_ids=["a", "b"])
    # The first run ends partial; its summary is queued, not yet delivered (no summary_ts).
    store.transition(op.id, "running", "partial", enqueue=owing("executed", op, **FACTS))
    assert _summaries(store, op.id) == 1 and store.get(op.id).summary_ts is None
    # A retry's run is cut off by a restart, then resumed (and retried again by a click).
    resumed = _cut_off_and_resumed(store, op.id, "partial")
    store.transition(op.id, "running", "done", enqueue=owing("resumed", resumed, **FACTS))
    assert _summaries(store, op.id) == 1


def test_a_summary_that_went_through_the_response_url_is_not_queued_again(
    store: OperationStore,
) -> None:
    owing = Owing(None)
    op = store.create(user_id="U1", channel_id="D1", state="running", new_ids=["a"])
    store.transition(op.id, "running", "failed", enqueue=owing("executed", op, **FACTS))
    box = Outbox(store)
    entry = box.claim(box.entries(op.id)[0].id)
    assert box.sent(entry, None, None)  # the response_url carried it: no ts is recorded
    retried = _cut_off_and_resumed(store, op.id, "failed")
    owed = owing("retried", retried, by="U1", was="interrupted", **FACTS)
    assert [e.template for e in owed] == []  # no notify channel: nothing else is owed here


def test_a_run_cut_off_before_any_summary_still_reports_once(store: OperationStore) -> None:
    owing = Owing(None)
    op = store.create(user_id="U1", channel_id="C1", state="running", new_ids=["a"])
    store.transition(op.id, "running", "interrupted")
    resumed = store.transition(op.id, "interrupted", "running")
    store.transition(op.id, "running", "done", enqueue=owing("resumed", resumed, **FACTS))
    assert _summaries(store, op.id) == 1
