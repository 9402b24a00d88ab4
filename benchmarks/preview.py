"""Benchmark 6: how long a preview takes when every Uplynk call takes 1 s (one round trip?)."""

from __future__ import annotations

import statistics
import time

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
)

NAME = "preview"
TITLE = "6. Preview latency"
LATENCY = 1.0  # seconds on every Uplynk call


def _preview(sender: Sender, standin: StandIn, library: str, ids: list[str], key: str) -> float:
    """Seconds from sending the command to the preview reaching the response_url."""
    started = time.time()
    response, _ = sender.command(add_text(ids, library), standin.response_url(key))
    response.raise_for_status()
    met, calls = standin.wait(lambda c: key in previews(c, key), 30, interval=0.02)
    if not met:
        raise RuntimeError(f"no preview for {key} within 30 s")
    return previews(calls, key)[key]["at"] - started


def run(ctx: Context) -> Outcome:
    rounds = 3 if ctx.quick else 7
    sim = Simulator(ctx).start()
    standin = StandIn(ctx).start()
    try:
        ids = sim.seed(20, "preview")
        sim.latency({"*": LATENCY})
        trips = [sim.round_trip() for _ in range(rounds)]
        bot = start_bot(ctx, sim, standin)
        try:
            sender = Sender(bot.url, timeout=60)
            by_id = [_preview(sender, standin, MARKETING, ids, f"pid{i}") for i in range(rounds)]
            by_name = [
                _preview(sender, standin, '"Marketing Library"', ids, f"pname{i}")
                for i in range(rounds)
            ]
        finally:
            bot.stop()
    finally:
        standin.stop()
        sim.stop()
    trip = statistics.median(trips)
    rows = []
    for label, samples in (("by library id", by_id), ("by library name", by_name)):
        value = statistics.median(samples)
        rows.append(
            Row(
                TITLE,
                f"command → preview, {label}, 20 assets, every Uplynk call {LATENCY:g} s "
                f"(median of {rounds})",
                f"{fmt_s(value)} = {value / trip:.2f}× one round trip (max {fmt_s(max(samples))})",
                f"one Uplynk round trip {fmt_s(trip)}",
                "≤ 1.2× one round trip",
                value <= 1.2 * trip,
            )
        )
    details = {"latency_s": LATENCY, "round_trips_s": trips, "by_id_s": by_id}
    details["by_name_s"] = by_name
    return Outcome(rows, details)
