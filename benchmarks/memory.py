"""Benchmark 4: resident memory of the web process after 100 and after 1,000 operations."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.harness import (
    Context,
    Outcome,
    Row,
    Sender,
    Server,
    Simulator,
    StandIn,
    add_text,
    previews,
    start_bot,
    summary_calls,
)
from tests.slack_requests import button_value

NAME = "memory"
TITLE = "4. Memory"
ROUND = 50  # operations in flight together
CLIENTS = 8  # sender threads


class _Driver:
    """Runs operations (command, preview, confirm, summary) in rounds of ROUND at once."""

    def __init__(self, bot: Server, standin: StandIn, assets: list[str]) -> None:
        self.bot = bot
        self.standin = standin
        self.assets = assets
        self.done = 0
        self.local = threading.local()
        self.senders: list[Sender] = []
        self.pool = ThreadPoolExecutor(CLIENTS, thread_name_prefix="memory-client")

    def _sender(self) -> Sender:
        sender = getattr(self.local, "sender", None)
        if sender is None:
            sender = self.local.sender = Sender(self.bot.url)
            self.senders.append(sender)
        return sender

    def _command(self, n: int) -> None:
        text = add_text(self.assets[2 * n : 2 * n + 2])
        # A channel each: the bot paces its posts to Slack's one a second per channel, and
        # this measures memory, not that pace (benchmarks/delivery.py does).
        url, channel = self.standin.response_url(f"mem{n}"), f"C0MEM{n:05d}"
        response, _ = self._sender().command(text, url, channel=channel)
        response.raise_for_status()

    def _confirm(self, n: int, operation: str) -> None:
        url = self.standin.response_url(f"act{n}")
        self._sender().click("addtolib_confirm", operation, url)[0].raise_for_status()

    def run_round(self, count: int) -> None:
        numbers = list(range(self.done, self.done + count))
        list(self.pool.map(self._command, numbers))
        met, calls = self.standin.wait(lambda c: len(previews(c, "mem")) >= count, 60, interval=0.1)
        found = previews(calls, "mem")
        if not met:
            raise RuntimeError(f"{len(found)} of {count} previews arrived")
        operations = {n: button_value(found[f"mem{n}"], "addtolib_confirm") for n in numbers}
        list(self.pool.map(lambda n: self._confirm(n, operations[n]), numbers))
        wanted = set(operations.values())

        def finished(c: list[dict]) -> bool:
            return wanted <= set(summary_calls(c))

        met, _ = self.standin.wait(finished, 60, interval=0.1)
        if not met:
            raise RuntimeError("not every operation reached its summary")
        self.standin.reset()
        self.done += count

    def run_until(self, total: int) -> None:
        while self.done < total:
            self.run_round(min(ROUND, total - self.done))

    def close(self) -> None:
        self.pool.shutdown()
        for sender in self.senders:
            sender.close()


def _settled_rss_mb(bot: Server) -> float:
    time.sleep(1.0)  # the outbox's last posts and the pool go idle
    return bot.worker_rss_kib() / 1024


def run(ctx: Context) -> Outcome:
    first, second = (20, 200) if ctx.quick else (100, 1_000)
    third = None if ctx.quick else 2_000  # a trend point: does growth go on at that pace?
    sim = Simulator(ctx).start()
    standin = StandIn(ctx).start()
    try:
        assets = sim.seed(2 * (third or second), "memory")
        bot = start_bot(ctx, sim, standin, ADDTOLIB_NOTIFY_CHANNEL="")  # summaries only
        driver = _Driver(bot, standin, assets)
        try:
            idle = _settled_rss_mb(bot)
            driver.run_until(first)
            after_first = _settled_rss_mb(bot)
            ctx.log(f"   RSS idle {idle:.1f} MB, after {first} operations {after_first:.1f} MB")
            started = time.monotonic()
            driver.run_until(second)
            rate = (second - first) / (time.monotonic() - started)
            after_second = _settled_rss_mb(bot)
            after_third = None
            if third:
                ctx.log(f"   RSS after {second} operations {after_second:.1f} MB")
                driver.run_until(third)
                after_third = _settled_rss_mb(bot)
        finally:
            driver.close()
            bot.stop()
    finally:
        standin.stop()
        sim.stop()

    growth = (after_second - after_first) / after_first
    rows = [
        Row(
            TITLE,
            f"web process VmRSS after {first} / {second:,} operations "
            "(command + confirm each, no latency)",
            f"{after_first:.1f} MB / {after_second:.1f} MB",
            f"idle after start: {idle:.1f} MB",
            "< 120 MB",
            after_second < 120,
        ),
        Row(
            TITLE,
            f"RSS growth from {first} to {second:,} operations",
            f"{growth * 100:+.1f}% ({after_second - after_first:+.1f} MB)",
            "",
            "< 10%",
            growth < 0.10,
        ),
    ]
    notes = []
    per_op_early = (after_second - after_first) * 1024 / (second - first)
    details = {
        "idle_mb": idle,
        "after_first_mb": after_first,
        "after_second_mb": after_second,
        "after_third_mb": after_third,
        "operations": [first, second, third],
        "growth": growth,
        "growth_kib_per_operation": {f"{first}-{second}": per_op_early},
        "operations_per_second": rate,
    }
    if third and after_third is not None:
        per_op_late = (after_third - after_second) * 1024 / (third - second)
        details["growth_kib_per_operation"][f"{second}-{third}"] = per_op_late
        rows.append(
            Row(
                TITLE,
                f"trend: VmRSS after {third:,} operations",
                f"{after_third:.1f} MB ({per_op_late:.1f} KiB per operation from {second:,}, "
                f"vs {per_op_early:.1f} KiB from {first})",
                "",
                "—",
                None,
            )
        )
        if growth >= 0.10 and per_op_late < per_op_early / 2:
            notes.append(
                f"the growth per operation falls ({per_op_early:.1f} KiB per operation from "
                f"{first} to {second:,}, {per_op_late:.1f} KiB from {second:,} to {third:,}): "
                "the worker is still warming up (allocator arenas of its ~50 threads, "
                "caches), not leaking a fixed amount per operation."
            )
    return Outcome(rows, details, notes)
