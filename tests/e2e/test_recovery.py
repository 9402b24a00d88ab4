"""Crash recovery: a server SIGKILLed mid-job; a second one takes it back and finishes it alone."""

from __future__ import annotations

import re
import uuid
from collections import Counter

from tests.fixtures_bot import MARKETING, NOTIFY, USER, Bot, button_value, dump, text_of
from tests.ops_support import adds, operation, wait_reply, wait_until

COUNT = 2000
PROGRESS = re.compile(r"(\d+)/2000")


def test_sigkill_mid_job_then_the_next_instance_resumes_it_with_nobody_clicking(start_bot) -> None:
    # UPLYNK_TIMEOUT: the resumed run waits up to one request's time (3.05 + 3 s, not 33 s)
    # for the batch the crash cut off in flight.
    env = {"UPLYNK_BATCH_SIZE": "100", "ADDTOLIB_LEASE_SECONDS": "2", "UPLYNK_TIMEOUT": "3"}
    first: Bot = start_bot(process=True, **env)
    assets = [uuid.uuid4().hex for _ in range(COUNT)]
    for n, asset_id in enumerate(assets):
        first.simulator.catalogue.add_asset(f"Bulk asset {n}", id=asset_id)  # in no library
    first.simulator.faults.set_latency("add", 0.2)  # 20 batches: about 4 s of adding

    preview, operation_id = first.preview(f"{MARKETING} {' '.join(assets)}")
    assert "Add 2000 assets" in text_of(preview)
    _, key = first.click("addtolib_confirm", operation_id)

    def progressed(call) -> bool:
        found = call.method == "response_url" and call.key == key and PROGRESS.search(call.text)
        return bool(found) and int(found.group(1)) >= 600

    first.slack.wait_for(progressed, timeout=30)
    # Kill just after a batch reached Uplynk: it lands there, but the bot never learns it.
    batches = len(adds(first))
    wait_until(lambda: len(adds(first)) > batches)
    first.process.kill()  # SIGKILL: no clean-up, the operation row is left `running`
    in_flight = set(adds(first)[-1])
    sent_before_crash = len(adds(first))
    at_crash = operation(first, operation_id)
    assert at_crash.state == "running"
    recorded = set(at_crash.added_ids)
    assert 600 <= len(recorded) < COUNT and not in_flight & recorded

    # A second server on the same database finds the lease lapsed, takes the operation back
    # and resumes it at once: the requester is told, nobody clicks Retry.
    second = start_bot(**env)
    dm = second.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.channel == USER, timeout=60
    )
    assert "resumed automatically" in text_of(dm)
    assert button_value(dm, "addtolib_retry") is None  # it finished: nothing to retry
    parent = second.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.channel == NOTIFY
            and "thread_ts" not in c.payload
            and f"<@{USER}>" in c.text
        )
    )
    notice = wait_reply(second, parent, "Interrupted by a restart")
    assert "resuming it automatically" in text_of(notice)
    summary = second.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage" and c.channel == "C0GENERAL" and operation_id in dump(c)
        ),
        timeout=60,
    )
    assert "Added (2000)" in text_of(summary)
    assert "Added 2000 assets" in text_of(dm)
    _, key = second.command("history")
    assert "`done`" in text_of(second.reply(key, "operations"))

    # Every requested asset is in the library; none was ever sent twice: the resumed run
    # skipped what was recorded and what the cut-off batch had landed (it checks first).
    held = second.simulator.catalogue.library_assets(MARKETING)
    assert set(assets) <= held
    sent = [a for batch in adds(second) for a in batch]
    assert not [a for a, n in Counter(sent).items() if n > 1]
    assert set(sent) == set(assets)
    resent = {a for batch in adds(second)[sent_before_crash:] for a in batch}
    assert resent and not resent & (recorded | in_flight)
    final = operation(second, operation_id)
    assert final.state == "done" and final.failed_ids == []
    assert sorted(final.added_ids) == sorted(assets)  # undo would remove all of them
    assert set(final.outcome.values()) == {"added"}
    # The later events went to the same thread.
    assert wait_reply(second, parent, "Resumed automatically").payload["thread_ts"] == parent.ts
    details = wait_reply(second, parent, f"Operation `{operation_id}`: *done*")
    assert "Added (2000)" in text_of(details)
