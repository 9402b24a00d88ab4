"""Benchmark 8: 1,000 adds scheduled for the same moment (docs/SPEC.md §15): how late each one
started against its time, claimed (the database's clock) and at its first PATCH to Uplynk.

The operations are written as the confirm click leaves them (state `scheduled`, a preview of
one new asset each), straight into the bot's database a little before their time: this
measures the schedule loop and the runs, not previews (benchmark 6 does those).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from benchmarks.harness import (
    ADMIN,
    CHANNEL,
    MARKETING,
    TEAM,
    Context,
    Outcome,
    Row,
    Simulator,
    StandIn,
    percentile,
    start_bot,
)
from bot.core.operation import State
from bot.core.store import OperationStore

NAME = "schedule"
TITLE = "8. Scheduled adds"
GOAL = 5.0  # docs/SPEC.md §15: within 5 s of its time


def run(ctx: Context) -> Outcome:
    count = 100 if ctx.quick else 1000
    offset = 20 if ctx.quick else 40  # seconds: time to write the rows before it comes
    sim = Simulator(ctx).start()
    standin = StandIn(ctx).start()
    bot = None
    store = None
    try:
        ids = sim.seed(count, "sched")
        bot = start_bot(ctx, sim, standin)
        store = OperationStore(bot.env["DATABASE_URL"])
        run_at = (datetime.now(UTC) + timedelta(seconds=offset)).replace(microsecond=0)
        for asset_id in ids:
            store.create(
                state=State.SCHEDULED,
                user_id=ADMIN,
                team_id=TEAM,
                channel_id=CHANNEL,
                library_id=MARKETING,
                library_name="Marketing Library",
                requested_ids=[asset_id],
                new_ids=[asset_id],
                run_at=run_at,
                run_zone="UTC",
                confirmed_by=ADMIN,
                confirmed_at=datetime.now(UTC),
            )
        written = datetime.now(UTC)
        if written >= run_at:
            raise RuntimeError(f"writing {count} operations took past their time")
        ctx.log(f"   {count} operations scheduled for {run_at:%H:%M:%S} UTC")
        deadline = time.monotonic() + offset + 300
        operations = []
        while time.monotonic() < deadline:
            operations = store.recent(limit=count)
            if all(op.state == State.DONE for op in operations):
                break
            time.sleep(0.5)
        else:
            states = sorted({op.state for op in operations})
            raise RuntimeError(f"not all ran within 300 s of their time: {states}")
        adds = [r for r in sim.requests() if r["call"] == "add"]
    finally:
        if store is not None:
            store.dispose()
        if bot is not None:
            bot.stop()
        standin.stop()
        sim.stop()

    due = run_at.timestamp()
    claimed = [(op.started_at - op.run_at).total_seconds() for op in operations if op.started_at]
    first_patch: dict[str, float] = {}
    for request in adds:
        body = request.get("body") or {}
        for asset_id in body.get("asset_ids") or [body.get("asset_id")]:
            first_patch.setdefault(asset_id, request["at"] - due)
    patched = [first_patch[a] for a in ids if a in first_patch]
    early = sum(1 for late in patched if late < 0)
    claim_p50, claim_p99 = percentile(claimed, 50), percentile(claimed, 99)
    patch_p50, patch_p99 = percentile(patched, 50), percentile(patched, 99)
    details = {
        "operations": count,
        "claim_lateness_s": {"p50": claim_p50, "p99": claim_p99, "max": max(claimed)},
        "patch_lateness_s": {"p50": patch_p50, "p99": patch_p99, "max": max(patched)},
        "patches": len(adds),
        "patched_before_time": early,
    }
    ctx.log(
        f"   claim p50/p99 {claim_p50:.2f}/{claim_p99:.2f} s; "
        f"first PATCH p50/p99 {patch_p50:.2f}/{patch_p99:.2f} s; {len(adds)} PATCH calls"
    )
    rows = [
        Row(
            TITLE,
            f"{count} adds scheduled for the same second: start lateness against the time, "
            "claimed (scheduled → confirmed, database clock) p50 / p99 / max",
            f"{claim_p50:.3f} / {claim_p99:.3f} / {max(claimed):.3f} s",
            "the time itself (0 s)",
            f"p99 ≤ {GOAL:g} s",
            claim_p99 <= GOAL,
        ),
        Row(
            TITLE,
            "the same, at each one's first PATCH to Uplynk p50 / p99 / max",
            f"{patch_p50:.2f} / {patch_p99:.2f} / {max(patched):.2f} s "
            f"({len(adds)} PATCH calls, {early} before the time)",
            "the time itself (0 s)",
            f"p99 ≤ {GOAL:g} s, none early, one PATCH each",
            patch_p99 <= GOAL and early == 0 and len(adds) == count,
        ),
    ]
    notes = [
        "Each run is a whole operation (re-check of the assets, PATCH, "
        "read-back, summary and thread through the outbox) on the ADDTOLIB_WORKERS pool; "
        "1,000 due at once queue behind each other there, so the later ones' PATCH comes "
        "as late as the pool's throughput makes it."
    ]
    return Outcome(rows, details, notes)
