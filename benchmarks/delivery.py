"""Benchmark 5: operations confirmed at once under Slack's per-channel limit: time to the last
notification against the floor (posts ÷ rate), and nothing lost or posted twice."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.harness import (
    NOTIFY,
    Context,
    Outcome,
    Row,
    Sender,
    Simulator,
    StandIn,
    add_text,
    fmt_s,
    notify_details_ids,
    previews,
    start_bot,
    summary_calls,
)
from tests.slack_requests import button_value

NAME = "delivery"
TITLE = "5. Delivery under Slack's limit"
RATE, BURST = 1.0, 5
DETAILS = re.compile(
    r"Operation `([0-9a-f]{32})`"
)  # what Slack allows per channel: the stand-in enforces it


def _posts(calls: list[dict[str, Any]], channel: str | None = None) -> list[dict[str, Any]]:
    return [
        c
        for c in calls
        if c["method"] == "chat.postMessage"
        and not c.get("error")
        and (channel is None or c["payload"].get("channel") == channel)
    ]


def run(ctx: Context) -> Outcome:
    count = 20 if ctx.quick else 100
    sim = Simulator(ctx).start()
    standin = StandIn(ctx).start()
    bot = None
    try:
        ids = sim.seed(count, "delivery")
        bot = start_bot(ctx, sim, standin)
        sender = Sender(bot.url, timeout=60)
        for n, asset_id in enumerate(ids):
            sender.command(add_text([asset_id]), standin.response_url(f"dlv{n:03d}-cmd"))
        met, calls = standin.wait(lambda c: len(previews(c, "dlv")) == count, 120, 0.2)
        if not met:
            raise RuntimeError(f"only {len(previews(calls, 'dlv'))} of {count} previews")
        operations = [
            button_value(call, "addtolib_confirm") for call in previews(calls, "dlv").values()
        ]
        standin.http.post(
            f"{standin.base}/_standin/limit", json={"rate": RATE, "burst": BURST}, timeout=10
        ).raise_for_status()
        clicked = time.time()
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(
                pool.map(
                    lambda n: sender.click(
                        "addtolib_confirm", operations[n], standin.response_url(f"act{n}")
                    ),
                    range(count),
                )
            )
        floor = 2 * count / RATE  # the notification channel: a parent and a reply each
        timeout = 2 * floor + 60

        def delivered(calls: list[dict[str, Any]]) -> bool:
            return set(operations) <= notify_details_ids(calls) and set(operations) <= set(
                summary_calls(calls)
            )

        met, calls = standin.wait(delivered, timeout, interval=0.5)
        if not met:
            raise RuntimeError(f"not everything delivered within {timeout:.0f} s")
        time.sleep(2)  # anything posted twice would arrive now
        calls = standin.calls()
    finally:
        if bot is not None:
            bot.stop()
        standin.stop()
        sim.stop()

    notify = _posts(calls, NOTIFY)
    last = max(c["at"] for c in notify) - clicked
    summaries = [c for c in _posts(calls) if c["payload"].get("channel") != NOTIFY]
    parents = [c for c in notify if not c["payload"].get("thread_ts")]
    summary_ops = [button_value(c, "addtolib_undo") for c in summaries]
    detail_ops = [
        m.group(1) for c in notify if (m := DETAILS.search(c["payload"].get("text") or ""))
    ]
    # Parents read alike ("… added 1 asset to …"): one per operation means none twice.
    twice = sum(n - 1 for ops in (summary_ops, detail_ops) for n in Counter(ops).values())
    twice += max(0, len(parents) - count)
    found = notify_details_ids(calls) & set(operations)
    lost = count - len(found) + count - len(summary_calls(calls)) + count - len(parents)
    refused = Counter(c.get("error") for c in calls if c.get("error"))
    ratio = last / floor
    details = {
        "operations": count,
        "rate_per_channel": RATE,
        "burst": BURST,
        "last_notification_s": last,
        "floor_s": floor,
        "ratio_to_floor": ratio,
        "notify_posts": len(notify),
        "summaries": len(summaries),
        "lost": lost,
        "posted_twice": twice,
        "refused_by_slack": dict(refused),
    }
    ctx.log(f"   {count} operations: last notification after {last:.1f} s, floor {floor:.0f} s")
    rows = [
        Row(
            TITLE,
            f"{count} operations confirmed at once, Slack at {RATE:g} post/s per channel "
            f"(burst {BURST}): confirm clicks → last notification delivered",
            f"{fmt_s(last)} = {ratio:.2f}× floor ({len(notify)} notification posts, "
            f"{len(summaries)} summaries; {refused.get('ratelimited', 0)} answered 429)",
            f"floor {fmt_s(floor)} ({2 * count} posts in the notification channel ÷ {RATE:g}/s)",
            "≤ 1.2× floor",
            ratio <= 1.2,
        ),
        Row(
            TITLE,
            "lost or posted twice (summaries, thread parents, replies)",
            f"{lost} lost, {twice} twice",
            "",
            "0 and 0",
            lost == 0 and twice == 0,
        ),
    ]
    notes = [
        "the floor ignores the burst of 5, which lets the first few posts go at once; "
        "replies wait for their parent's ts, so each thread is ordered"
    ]
    return Outcome(rows, details, notes)
