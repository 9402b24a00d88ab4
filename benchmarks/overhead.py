"""Benchmark 3: the bot's own time on a 2-asset add, confirm click to summary, less Uplynk's."""

from __future__ import annotations

import itertools
import time

from benchmarks.harness import (
    Context,
    Outcome,
    Row,
    Sender,
    Simulator,
    StandIn,
    add_text,
    fmt_ms,
    median,
    notify_details_ids,
    percentile,
    previews,
    start_bot,
    summary_calls,
)
from tests.slack_requests import button_value

NAME = "overhead"
TITLE = "3. Overhead"
UPLYNK_LATENCY = 0.05  # seconds on every simulator call
WARMUP = 3


def _one(sender: Sender, sim: Simulator, standin: StandIn, assets: list[str], n: int) -> dict:
    """Preview, then time confirm click → summary; split it around the Uplynk calls."""
    standin.reset()
    key = f"ovh{n}"
    sender.command(add_text(assets), standin.response_url(key))[0].raise_for_status()
    met, calls = standin.wait(lambda c: key in previews(c, key), 30, interval=0.02)
    if not met:
        raise RuntimeError(f"run {n}: no preview within 30 s")
    operation = button_value(previews(calls, key)[key], "addtolib_confirm")
    assert operation
    clicked = time.time()
    sender.click("addtolib_confirm", operation, standin.response_url(f"{key}-act"))
    met, calls = standin.wait(lambda c: operation in summary_calls(c), 30, interval=0.02)
    if not met:
        raise RuntimeError(f"run {n}: no summary within 30 s")
    done = summary_calls(calls)[operation]["at"]
    # Let the notification thread finish, so it does not overlap the next run.
    standin.wait(lambda c: operation in notify_details_ids(c), 10, interval=0.02)
    recorded = sorted(r["at"] for r in sim.requests() if clicked <= r["at"] <= done)
    wall = done - clicked
    gaps = [b - a - UPLYNK_LATENCY for a, b in itertools.pairwise(recorded)]
    return {
        "wall_s": wall,
        "uplynk_calls": len(recorded),
        # Calls may overlap (look-ups run together): Uplynk's share is the time covered by
        # at least one call in flight, not the sum of their latencies.
        "uplynk_s": _covered(recorded, UPLYNK_LATENCY, done),
        "overhead_s": wall - _covered(recorded, UPLYNK_LATENCY, done),
        "before_first_call_s": (recorded[0] - clicked) if recorded else None,
        "between_calls_s": sum(gaps),
        "after_last_call_s": (done - recorded[-1] - UPLYNK_LATENCY) if recorded else None,
    }


def _covered(starts: list[float], latency: float, until: float) -> float:
    """Seconds during which at least one call (each `latency` long) was in flight."""
    total, end = 0.0, float("-inf")
    for start in starts:
        stop = min(start + latency, until)
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def run(ctx: Context) -> Outcome:
    runs = 10 if ctx.quick else 30
    sim = Simulator(ctx).start()
    standin = StandIn(ctx).start()
    try:
        sim.latency({"*": UPLYNK_LATENCY})
        assets = sim.seed(2 * (runs + WARMUP), "overhead")
        bot = start_bot(ctx, sim, standin)
        sender = Sender(bot.url)
        try:
            results = []
            for n in range(runs + WARMUP):
                result = _one(sender, sim, standin, assets[2 * n : 2 * n + 2], n)
                if n >= WARMUP:
                    results.append(result)
        finally:
            sender.close()
            bot.stop()
    finally:
        standin.stop()
        sim.stop()

    overheads = [r["overhead_s"] for r in results]
    calls = sorted({r["uplynk_calls"] for r in results})
    parts = {
        part: median([r[part] for r in results])
        for part in ("before_first_call_s", "between_calls_s", "after_last_call_s")
    }
    ctx.log(
        "   median split, ms: click→first Uplynk call "
        f"{fmt_ms(parts['before_first_call_s'])}, between calls "
        f"{fmt_ms(parts['between_calls_s'])}, last call→summary "
        f"{fmt_ms(parts['after_last_call_s'])}"
    )
    rows = [
        Row(
            TITLE,
            f"2-asset add: (confirm click → summary) − time with an Uplynk call in flight "
            f"({'/'.join(map(str, calls))} calls of {UPLYNK_LATENCY * 1000:.0f} ms); "
            f"median of {runs}",
            f"{fmt_ms(median(overheads))} ms (p90 {fmt_ms(percentile(overheads, 90))} ms; "
            f"wall median {fmt_ms(median([r['wall_s'] for r in results]))} ms)",
            f"Uplynk share: median {fmt_ms(median([r['uplynk_s'] for r in results]))} ms",
            "< 50 ms",
            median(overheads) < 0.050,
        )
    ]
    details = {
        "uplynk_latency_s": UPLYNK_LATENCY,
        "runs": runs,
        "median_overhead_s": median(overheads),
        "p90_overhead_s": percentile(overheads, 90),
        "median_split_s": parts,
        "each": results,
    }
    return Outcome(rows, details)
