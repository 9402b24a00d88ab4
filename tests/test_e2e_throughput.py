"""Throughput end to end (SPEC 3.3, 11): a preview in one round trip, concurrent batches under
an adaptive limit, and the read-back that catches what Uplynk accepted but did not add."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from bot.core.operations.run import NOT_LISTED
from tests.fixtures_bot import MARKETING, Bot, button_value, dump, text_of
from tests.ops_support import operation, wait_until

LATENCY = 1.5  # seconds on every Uplynk call in the preview tests


def bulk(bot: Bot, count: int) -> list[str]:
    return [bot.simulator.catalogue.add_asset(f"Bulk clip {n}").id for n in range(count)]


def sent_ids(bot: Bot) -> Counter[str]:
    sent: Counter[str] = Counter()
    for request in bot.simulator.requests:
        if request.call == "add":
            body = request.body
            sent.update([body["asset_id"]] if "asset_id" in body else body["asset_ids"])
    return sent


def timed_preview(bot: Bot, text: str) -> tuple[float, str]:
    started = time.time()
    call, operation_id = bot.preview(text)
    assert operation_id, text_of(call)
    return call.at - started, operation_id


def test_a_preview_costs_one_round_trip_by_id_and_by_name(bot: Bot) -> None:
    assets = bulk(bot, 3)
    bot.simulator.faults.set_latency("*", LATENCY)
    for library in (MARKETING, '"Marketing Library"'):
        bot.simulator.clear_requests()
        elapsed, _ = timed_preview(bot, f"{library} {' '.join(assets)}")
        # Issue 13 asks for 1.5 round trips at most; done one after the other it takes two.
        assert elapsed < 1.5 * LATENCY, f"{library}: {elapsed:.2f} s"
        lookups = bot.simulator.requests
        expected = {"get_library"} if library == MARKETING else {"find_libraries"}
        assert {r.call for r in lookups} == expected | {"get_assets"}
        first, last = min(r.at for r in lookups), max(r.at for r in lookups)
        # The library and the assets were asked for together, before either answered.
        assert last - first < LATENCY / 2


def test_concurrency_4_keeps_2_to_4_batches_in_flight_and_sends_each_asset_once(
    start_bot,
) -> None:
    bot: Bot = start_bot(UPLYNK_BATCH_SIZE="100", UPLYNK_CONCURRENCY="4")
    assets = bulk(bot, 2000)
    _, operation_id = bot.preview(f"{MARKETING} {' '.join(assets)}")
    bot.simulator.faults.set_latency("add", 0.2)
    bot.click("addtolib_confirm", operation_id)
    summary = bot.summary(operation_id, timeout=60)
    assert "Added (2000)" in text_of(summary)
    assert 2 <= bot.simulator.peak_in_flight("add") <= 4
    assert sent_ids(bot) == Counter(assets)
    final = operation(bot, operation_id)
    assert final.state == "done" and sorted(final.added_ids) == sorted(assets)
    assert set(assets) <= bot.simulator.catalogue.library_assets(MARKETING)


def test_429s_with_retry_after_mid_job_lower_the_limit_and_lose_nothing(start_bot) -> None:
    bot: Bot = start_bot(UPLYNK_BATCH_SIZE="100", UPLYNK_CONCURRENCY="4", process=True)
    assets = bulk(bot, 2000)
    _, operation_id = bot.preview(f"{MARKETING} {' '.join(assets)}")
    bot.simulator.faults.set_latency("add", 0.1)
    bot.simulator.faults.fail("add", 429, times=4, retry_after=1, after=3)
    bot.click("addtolib_confirm", operation_id)
    summary = bot.summary(operation_id, timeout=90)
    assert "Added (2000)" in text_of(summary)
    final = operation(bot, operation_id)
    assert final.state == "done" and sorted(final.added_ids) == sorted(assets)
    assert set(assets) <= bot.simulator.catalogue.library_assets(MARKETING)
    sent = sent_ids(bot)
    assert set(sent) == set(assets)
    assert sum(sent.values()) == 2000 + 4 * 100  # only the four refused batches were resent
    # The limit was lowered: in the log and in /metrics.
    assert "uplynk concurrency limit 4 -> 2" in bot.process.output()
    metrics = requests.get(bot.process.url + "/metrics", timeout=10).text
    lowered = [
        line
        for line in metrics.splitlines()
        if line.startswith('addtolib_uplynk_concurrency_changes_total{direction="lowered"}')
    ]
    assert lowered and float(lowered[0].split()[-1]) >= 1


def test_an_asset_accepted_but_not_added_is_reported_failed_with_retry(bot: Bot) -> None:
    assets = bulk(bot, 5)
    swallowed = assets[2]
    bot.simulator.faults.swallow([swallowed])
    _, operation_id = bot.preview(f"{MARKETING} {' '.join(assets)}")
    bot.click("addtolib_confirm", operation_id)
    summary = bot.summary(operation_id)
    text = text_of(summary)
    assert "Added (4)" in text and swallowed in text and "does not list" in text
    assert button_value(summary, "addtolib_retry") == operation_id
    final = operation(bot, operation_id)
    assert final.state == "partial"
    assert final.failed_ids == [swallowed] and swallowed not in final.added_ids
    assert final.outcome[swallowed] == NOT_LISTED
    assert sorted(final.added_ids) == sorted(a for a in assets if a != swallowed)
    details = bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage" and "thread_ts" in c.payload and swallowed in dump(c)
        )
    )
    assert "does not list" in text_of(details)

    bot.simulator.faults.clear()  # Uplynk behaves again: Retry adds just that one
    bot.simulator.clear_requests()
    _, _key = bot.click("addtolib_retry", operation_id)
    wait_until(lambda: operation(bot, operation_id).state == "done", timeout=30)
    assert sent_ids(bot) == Counter([swallowed])
    assert set(assets) <= bot.simulator.catalogue.library_assets(MARKETING)


def test_as_many_previews_look_up_at_once_as_there_are_workers(start_bot) -> None:
    # Every job thread planning a preview needs a look-up thread beside it; with fewer, the
    # previews past that number wait a whole Uplynk round trip for one.
    workers = 24
    bot: Bot = start_bot(ADDTOLIB_WORKERS=str(workers))
    asset = bulk(bot, 1)[0]
    bot.simulator.faults.set_latency("*", LATENCY)
    with ThreadPoolExecutor(workers) as senders:  # all at once, as a busy channel would
        keys = list(senders.map(lambda _: bot.command(f"{MARKETING} {asset}")[1], range(workers)))
    for key in keys:
        assert "addtolib_confirm" in dump(bot.reply(key, "addtolib_confirm", timeout=60))
    assert bot.simulator.peak_in_flight("get_assets") == workers
    assert bot.simulator.peak_in_flight("get_library") == workers
