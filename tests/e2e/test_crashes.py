"""Exactly once across a crash (SIGKILL) and a graceful stop: what only separate processes show."""

from __future__ import annotations

from collections import Counter

from tests.fixtures_bot import (
    MARKETING,
    OTHER,
    USER,
    Bot,
    button_value,
    dump,
    text_of,
)
from tests.ops_support import (
    SHORT_REQUESTS,
    add,
    adds,
    bulk_assets,
    journal,
    operation,
    removes,
    wait_until,
)


def test_resume_does_not_claim_what_someone_else_added_and_undo_leaves_it(start_bot) -> None:
    env = {"UPLYNK_BATCH_SIZE": "100", "ADDTOLIB_LEASE_SECONDS": "2", **SHORT_REQUESTS}
    alice: Bot = start_bot(process=True, **env)
    assets = bulk_assets(alice, 800)
    alice.simulator.faults.set_latency("add", 0.3)
    _, operation_id = alice.preview(f"{MARKETING} {' '.join(assets)}")
    alice.click("addtolib_confirm", operation_id)
    wait_until(lambda: len(journal(alice, operation_id)) >= 3, timeout=30, every=0.05)
    alice.process.kill()  # killed after 2 batches (a third maybe in flight)
    sent_by_first_run = {a for batch in adds(alice) for a in batch}
    bobs = assets[-1]  # one of her unsent assets
    assert bobs not in sent_by_first_run

    # Bob adds it through an instance whose long lease leaves Alice's job alone meanwhile.
    bob_bot = start_bot(
        UPLYNK_BATCH_SIZE="100", ADDTOLIB_LEASE_SECONDS="600", process=True, **SHORT_REQUESTS
    )
    bob_operation, _ = add(bob_bot, f"{MARKETING} {bobs}", user_id=OTHER)
    assert operation(bob_bot, bob_operation).added_ids == [bobs]
    bob_bot.process.stop()

    second = start_bot(**env)  # takes Alice's job back and resumes it, nobody clicking
    second.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage" and c.channel == "C0GENERAL" and operation_id in dump(c)
        ),
        timeout=60,
    )
    wait_until(lambda: operation(second, operation_id).state == "done", timeout=30)
    resumed = operation(second, operation_id)
    assert resumed.state == "done"
    assert bobs not in resumed.added_ids
    assert resumed.outcome[bobs] == "already in library"
    assert sorted(resumed.added_ids) == sorted(set(assets) - {bobs})
    sent = Counter(a for batch in adds(second) for a in batch)
    assert sent[bobs] == 1  # Bob's own PATCH only

    _, undo_key = second.click("addtolib_undo", operation_id)
    second.reply(undo_key, "Undone")
    held = second.simulator.catalogue.library_assets(MARKETING)
    assert bobs in held and not (set(assets) - {bobs}) & held
    assert bobs not in {a for batch in removes(second) for a in batch}
    assert operation(second, operation_id).state == "undone"


def test_an_undo_cut_off_by_a_crash_is_finished_by_undo_again(start_bot) -> None:
    env = {"UPLYNK_BATCH_SIZE": "100", "ADDTOLIB_LEASE_SECONDS": "2", **SHORT_REQUESTS}
    first: Bot = start_bot(process=True, **env)
    assets = bulk_assets(first, 600)
    operation_id, _ = add(first, f"{MARKETING} {' '.join(assets)}")
    first.simulator.faults.set_latency("remove", 0.4)
    first.click("addtolib_undo", operation_id)
    wait_until(lambda: len(journal(first, operation_id, "remove")) >= 3, timeout=30, every=0.05)
    first.process.kill()  # mid-undo: the row is left `undoing`
    assert operation(first, operation_id).state == "undoing"

    second = start_bot(**env)
    dm = second.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.channel == USER and "undo" in dump(c),
        timeout=30,
    )
    assert "was interrupted by a restart after removing" in text_of(dm)
    assert button_value(dm, "addtolib_undo") == operation_id
    cut = operation(second, operation_id)
    assert cut.state == "done" and cut.run_token is None and len(cut.removed_ids) < 600

    second.simulator.faults.set_latency("remove", 0)
    removes_before = len(removes(second))
    _, key = second.click("addtolib_undo", operation_id, channel_id=f"D{USER}")
    # A DELETE cut off in flight may still be answered by a run that only looks dead: the
    # resumed undo waits for it up to one request's timeout (6.05 s here) from when it was sent.
    second.reply(key, "*Undone*", timeout=60)
    final = operation(second, operation_id)
    assert final.state == "undone" and sorted(final.removed_ids) == sorted(assets)
    assert not set(assets) & second.simulator.catalogue.library_assets(MARKETING)
    # Nothing removed before the crash was sent again, except a batch cut off in flight.
    sent = Counter(a for batch in removes(second) for a in batch)
    assert set(sent) == set(assets) and max(sent.values()) <= 2
    resent = {a for batch in removes(second)[removes_before:] for a in batch}
    assert resent and not resent & set(cut.removed_ids)
