"""SIGTERM mid-job: no new work, the batch in flight finishes and is recorded, the next
instance takes the operation over at once (its lease was handed back) and finishes it with
nobody clicking."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter

import requests

from bot.slack.blocks import RESTARTING
from tests.fixtures_bot import MARKETING, USER, Bot, ack_text, button_value, dump, text_of
from tests.ops_support import adds, operation, wait_until

COUNT = 2000


def test_sigterm_stops_between_batches_and_the_next_instance_takes_over(start_bot) -> None:
    # A default 60 s lease: the second instance must not need to wait for it to lapse.
    env = {"UPLYNK_BATCH_SIZE": "100", "ADDTOLIB_GRACE_SECONDS": "20"}
    first: Bot = start_bot(procfile=True, **env)  # production's web command: SIGTERM to its parent
    assets = [uuid.uuid4().hex for _ in range(COUNT)]
    for n, asset_id in enumerate(assets):
        first.simulator.catalogue.add_asset(f"Bulk asset {n}", id=asset_id)
    first.simulator.faults.set_latency("add", 1.5)  # 20 batches of 1.5 s

    _, operation_id = first.preview(f"{MARKETING} {' '.join(assets)}")
    _, key = first.click("addtolib_confirm", operation_id)
    wait_until(lambda: len(adds(first)) >= 2, timeout=30)  # the second batch is in flight
    first.process.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    # Draining: new work is refused with a clear message, and /readyz takes us out of rotation.
    response, _ = first.command(f"{MARKETING} {assets[0]}")
    assert response.status_code == 200 and ack_text(response) == RESTARTING
    ready = requests.get(first.process.url + "/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["error"] == "shutting_down"

    first.process.proc.wait(20)  # within the grace period
    assert first.process.returncode == 0
    sent = [a for batch in adds(first) for a in batch]
    stopped = operation(first, operation_id)
    assert stopped.state == "running"  # left for the next instance, not failed
    assert sorted(stopped.added_ids) == sorted(sent)  # the batch in flight finished, recorded
    assert 200 <= len(sent) < COUNT
    told = first.reply(key, "restarting")
    assert f"{len(sent)} of {COUNT} assets added so far" in text_of(told)

    # The next instance's first sweep takes it at once: the lease was handed back.
    second = start_bot(**env)
    second.simulator.faults.set_latency("add", 0)
    summary = second.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and operation_id in dump(c) and "Added" in dump(c),
        timeout=60,
    )
    assert f"Added ({COUNT})" in text_of(summary)  # nobody clicked anything
    dm = second.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.channel == USER, timeout=15
    )
    assert "resumed automatically" in text_of(dm) and button_value(dm, "addtolib_retry") is None
    final = operation(second, operation_id)
    assert final.state == "done" and sorted(final.added_ids) == sorted(assets)
    every = [a for batch in adds(second) for a in batch]
    twice = {a for a, n in Counter(every).items() if n > 1}
    assert len(twice) <= 100  # at most the one batch in flight at the stop, sent twice
    assert set(assets) <= second.simulator.catalogue.library_assets(MARKETING)
