"""Benchmark 2: 10,000 assets into one library: wall time vs the floor (batches × latency ÷
concurrency) at UPLYNK_CONCURRENCY 1, 4 and 8, and vs a naive one-call-per-asset loop."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import requests

from benchmarks.harness import (
    MARKETING,
    Context,
    Outcome,
    Row,
    Sender,
    Simulator,
    StandIn,
    add_text,
    fmt_s,
    previews,
    start_bot,
    summary_calls,
)
from bot.uplynk.signing import sign
from tests.slack_requests import button_value

NAME = "bulk_add"
TITLE = "2. Bulk add"
ADD_LATENCY = 0.2  # seconds on every add (PATCH) call; the other calls answer at once


BATCH = 100
CONCURRENCIES = (1, 4, 8)
GOALS = {1: 1.2, 4: 1.3, 8: 1.5}  # most × floor


def _bulk(
    ctx: Context, sim: Simulator, standin: StandIn, count: int, batch: int, concurrency: int
) -> dict:
    """Seed ``count`` assets, preview them, click confirm, time it until the summary."""
    sim.reset()
    sim.latency({"add": ADD_LATENCY})
    ids = sim.seed(count, f"bulk-{batch}-{concurrency}")
    standin.reset()
    env = {
        "UPLYNK_BATCH_SIZE": str(batch),
        "UPLYNK_CONCURRENCY": str(concurrency),
        "ADDTOLIB_MAX_ASSETS": str(max(count, 5000)),
    }
    bot = start_bot(ctx, sim, standin, **env)
    floor = math.ceil(count / batch) * ADD_LATENCY / concurrency
    try:
        sender = Sender(bot.url, timeout=60)
        response, _ = sender.command(add_text(ids), standin.response_url("bulk-cmd"))
        response.raise_for_status()
        met, calls = standin.wait(lambda c: bool(previews(c, "bulk-cmd")), 120, interval=0.2)
        if not met:
            raise RuntimeError(f"no preview for {count} assets within 120 s")
        operation = button_value(previews(calls, "bulk-cmd")["bulk-cmd"], "addtolib_confirm")
        assert operation
        clicked = time.time()
        sender.click("addtolib_confirm", operation, standin.response_url("bulk-act"))
        timeout = 3 * floor + 60
        met, calls = standin.wait(lambda c: operation in summary_calls(c), timeout, 0.25)
        if not met:
            raise RuntimeError(f"no summary within {timeout:.0f} s (batch {batch})")
        summary = summary_calls(calls)[operation]
    finally:
        bot.stop()
    done = summary["at"]
    recorded = [r for r in sim.requests() if clicked <= r["at"] <= done]
    adds = [r for r in recorded if r["call"] == "add"]
    added = re.search(r"\*Added \((\d+)\)", _text(summary))
    wall = done - clicked
    return {
        "assets": count,
        "batch_size": batch,
        "concurrency": concurrency,
        "wall_s": wall,
        "floor_s": floor,
        "ratio_to_floor": wall / floor,
        "add_calls": len(adds),
        "uplynk_calls": {c: sum(r["call"] == c for r in recorded) for c in _calls(recorded)},
        "added_per_summary": int(added.group(1)) if added else None,
        "click_to_first_add_s": (adds[0]["at"] - clicked) if adds else None,
        "last_add_to_summary_s": (done - adds[-1]["at"] - ADD_LATENCY) if adds else None,
    }


def _calls(recorded: list[dict[str, Any]]) -> list[str]:
    return sorted({r["call"] for r in recorded})


def _text(call: dict[str, Any]) -> str:
    parts = [call["payload"].get("text") or ""]
    for block in call["payload"].get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(text.get("text", ""))
    return "\n".join(parts)


def _naive(sim: Simulator, sample: int) -> dict:
    """The API documentation's way: one signed PATCH per asset, one after the other."""
    sim.reset()
    sim.latency({"add": ADD_LATENCY})
    ids = sim.seed(sample, "naive")
    url = f"{sim.url}/api/v4/libraries/{MARKETING}/assets"
    started = time.perf_counter()
    for asset_id in ids:
        params = sign({}, sim.user_id, sim.api_key)
        response = requests.patch(url, params=params, json={"asset_id": asset_id}, timeout=30)
        response.raise_for_status()
    seconds = time.perf_counter() - started
    return {"sample": sample, "seconds": seconds, "per_asset_s": seconds / sample}


def run(ctx: Context) -> Outcome:
    count, sample = (1_000, 20) if ctx.quick else (10_000, 200)
    sim = Simulator(ctx).start()
    standin = StandIn(ctx).start()
    runs = []
    try:
        for concurrency in CONCURRENCIES:
            result = _bulk(ctx, sim, standin, count, BATCH, concurrency)
            ctx.log(
                f"   concurrency {concurrency}: {result['wall_s']:.2f} s, "
                f"floor {result['floor_s']:.1f} s, {result['add_calls']} PATCH calls"
            )
            runs.append(result)
        naive = _naive(sim, sample)
    finally:
        standin.stop()
        sim.stop()

    rows = []
    for result in runs:
        complete = result["added_per_summary"] == count
        goal = GOALS[result["concurrency"]]
        rows.append(
            Row(
                TITLE,
                f"{count:,} assets, batch {result['batch_size']}, UPLYNK_CONCURRENCY "
                f"{result['concurrency']}: confirm click → summary posted "
                f"(add latency {ADD_LATENCY * 1000:.0f} ms)",
                f"{fmt_s(result['wall_s'])} = {result['ratio_to_floor']:.2f}× floor "
                f"({result['add_calls']} PATCH calls; summary says {result['added_per_summary']} "
                "added)",
                f"floor {fmt_s(result['floor_s'])} ({math.ceil(count / result['batch_size'])} "
                f"batches × {ADD_LATENCY:g} s ÷ {result['concurrency']})",
                f"≤ {goal:g}× floor, all added",
                result["ratio_to_floor"] <= goal and complete,
            )
        )
    extrapolated = naive["per_asset_s"] * count
    speedups = ", ".join(
        f"concurrency {r['concurrency']} is {extrapolated / r['wall_s']:.0f}× faster" for r in runs
    )
    rows.append(
        Row(
            TITLE,
            f"naive: one PATCH per asset (API doc sample), {count:,} assets",
            f"≈ {fmt_s(extrapolated)} (extrapolated from {sample} assets measured: "
            f"{naive['seconds']:.1f} s, {naive['per_asset_s'] * 1000:.0f} ms each)",
            speedups,
            "—",
            None,
        )
    )
    details = {"add_latency_s": ADD_LATENCY, "runs": runs, "naive": naive}
    details["naive"]["extrapolated_s"] = extrapolated
    return Outcome(rows, details)
