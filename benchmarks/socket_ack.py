"""Benchmark 7: how soon `python -m bot socket` acks slash commands while Uplynk takes 2.5 s."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import (
    BOT_WORKERS,
    DEMO_PAIR,
    Context,
    Outcome,
    Row,
    Simulator,
    SocketStandIn,
    add_text,
    command_fields,
    fmt_ms,
    percentile,
    preview_floor,
    previews,
    start_socket_bot,
)
from bot.slack_standin.socket_mode import ACK_DEADLINE, Ack, SocketModeStandIn

NAME = "socket_ack"
TITLE = "7. Socket Mode ack latency"
UPLYNK_LATENCY = 2.5  # seconds on every simulator call (issue 9)
GOAL = 1.0  # issue 9: acknowledged within 1 s
BURST = 20  # envelopes delivered back to back, then their acks awaited
BURST_GAP = 0.5  # seconds between bursts, so later bursts meet earlier ones' Uplynk work
ACK_WAIT = 10.0  # seconds to wait for an ack before counting it missing


@dataclass
class Delivered:
    """One slash-command envelope and what came back on the socket."""

    key: str  # the response_url key its preview is posted under
    sent_at: float  # wall clock, as the stand-in recorded it
    ack: Ack | None  # None: no ack within ACK_WAIT


def _burst(sm: SocketModeStandIn, standin: SocketStandIn, keys: list[str]) -> list[Delivered]:
    """Deliver one envelope per key at once, then wait for every ack."""
    text = add_text(DEMO_PAIR)
    envelopes = [
        (key, sm.send("slash_commands", command_fields(text, standin.response_url(key))))
        for key in keys
    ]
    delivered = []
    for key, envelope in envelopes:
        try:
            ack: Ack | None = sm.wait_ack(envelope.envelope_id, timeout=ACK_WAIT)
        except TimeoutError:
            ack = None
        delivered.append(Delivered(key, envelope.sent_at, ack))
    return delivered


def _acked_text(ack: Ack | None) -> str:
    return str((ack.payload or {}).get("text", "")) if ack is not None else ""


def run(ctx: Context) -> Outcome:
    total = 60 if ctx.quick else 200
    sim = Simulator(ctx).start()
    standin = SocketStandIn(ctx).start()
    try:
        sim.latency({"*": UPLYNK_LATENCY})
        trip = sim.round_trip()
        bot = start_socket_bot(ctx, sim, standin)
        try:
            sm = standin.socket_mode
            # One unmeasured command first: the bot's first one also starts its job threads.
            warmup = _burst(sm, standin, ["sockwarmup"])[0]
            time.sleep(BURST_GAP)
            sent: list[Delivered] = []
            for start in range(0, total, BURST):
                keys = [f"sock{i}" for i in range(start, min(total, start + BURST))]
                sent += _burst(sm, standin, keys)
                time.sleep(BURST_GAP)
            ctx.log("   acks in; waiting for previews")
            expected = preview_floor(total + 1, UPLYNK_LATENCY)  # and the warm-up
            deadline = max(30.0, 2.5 * expected)
            _, calls = standin.wait(
                lambda calls: len(previews(calls, "sock")) >= total + 1, deadline, interval=0.5
            )
            alive = bot.alive
        finally:
            ctx.stop(bot)
    finally:
        standin.stop()
        sim.stop()

    latencies = [d.ack.latency for d in sent if d.ack is not None and d.ack.latency is not None]
    missing = sum(d.ack is None for d in sent)
    refused = [d.ack.error for d in sent if d.ack is not None and not d.ack.ok]
    checking = sum(_acked_text(d.ack).startswith("Checking 2 assets") for d in sent)
    over_goal = sum(t > GOAL for t in latencies)
    over_deadline = sum(t > ACK_DEADLINE for t in latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    worst = max(latencies, default=float("nan"))
    quad = f"{fmt_ms(p50)} / {fmt_ms(p99)} / {fmt_ms(worst)}"

    arrived = {k: c for k, c in previews(calls, "sock").items() if k != "sockwarmup"}
    sent_at = {d.key: d.sent_at for d in sent}
    waits = [call["at"] - sent_at[key] for key, call in arrived.items() if key in sent_at]
    first = min(sent_at.values())
    last = max((call["at"] for call in arrived.values()), default=first) - first

    rows = [
        Row(
            TITLE,
            f"envelope → ack p50 / p99 / max, ms ({total} slash commands, bursts of {BURST}, "
            f"Uplynk {UPLYNK_LATENCY:g} s a call)",
            quad,
            f"one Uplynk call {fmt_ms(trip)} ms (an ack that waited for Uplynk)",
            f"p99 < {fmt_ms(GOAL)} ms (issue 9)",
            p99 < GOAL and missing == 0,
        ),
        Row(
            TITLE,
            f"acks over 1 s / over {ACK_DEADLINE:g} s / missing / refused by the stand-in; "
            "acks saying “Checking 2 assets…”",
            f"{over_goal} / {over_deadline} / {missing} / {len(refused)}; {checking}/{total}",
            "",
            f"— / 0 / 0 / 0; {total}/{total}",
            over_deadline == 0 and missing == 0 and not refused and checking == total,
        ),
        Row(
            TITLE,
            "previews (confirmations) on the commands' response_urls",
            f"{len(arrived)}/{total}, the last {last:.1f} s after the first command "
            f"({last / expected:.2f}× floor); "
            f"command→preview p50 {percentile(waits, 50):.1f} s, "
            f"max {max(waits, default=0):.1f} s",
            f"floor ≈ {expected:.1f} s (({total}+1 warm-up) round trips of "
            f"{UPLYNK_LATENCY:g} s / {BOT_WORKERS} workers)",
            f"all, within {deadline:.0f} s",
            len(arrived) == total and alive,
        ),
    ]
    details: dict[str, Any] = {
        "commands": total,
        "burst": BURST,
        "burst_gap_s": BURST_GAP,
        "uplynk_latency_s": UPLYNK_LATENCY,
        "uplynk_round_trip_s": trip,
        "ack_latency_s": {"p50": p50, "p99": p99, "max": worst},
        "acks_over_1s": over_goal,
        "acks_over_3s": over_deadline,
        "acks_missing": missing,
        "acks_refused": refused,
        "acks_with_checking_message": checking,
        "warmup_ack_s": warmup.ack.latency if warmup.ack else None,
        "previews_arrived": len(arrived),
        "preview_wait_s": {
            "p50": percentile(waits, 50) if waits else None,
            "max": max(waits, default=None),
        },
        "last_preview_after_first_command_s": last,
        "preview_deadline_s": deadline,
        "bot_alive_at_end": alive,
    }
    notes = [
        "The Slack stand-in runs inside the benchmark process (its Socket Mode side is driven "
        "in-process), on the load CPU; an ack's time is taken when the stand-in has read it "
        "off the WebSocket, so this process's own delays count against the bot."
    ]
    return Outcome(rows, details, notes)
