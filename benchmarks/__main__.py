"""`python -m benchmarks [--quick] [--only NAME]`: run the benchmarks, print and save a table."""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import TABLE_HEADER, Context, CpuMeter, Outcome, Row, machine_info

BENCHMARKS = (
    "ack_latency",
    "bulk_add",
    "overhead",
    "memory",
    "preview",
    "delivery",
    "socket_ack",
    "schedule",
    "scale",
)
RESULTS = Path(__file__).resolve().parent / "results"


class _Signals:
    """Ctrl-C / SIGTERM raise KeyboardInterrupt, except while stopping children (then later)."""

    cleaning = False
    pending = False

    @classmethod
    def handle(cls, signum: int, frame: Any) -> None:
        if cls.cleaning:
            cls.pending = True  # a signal must not cut the clean-up short
            return
        raise KeyboardInterrupt

    @classmethod
    def stop_all(cls, ctx: Context) -> None:
        cls.cleaning = True
        try:
            ctx.stop_all()
        finally:
            cls.cleaning = False
        if cls.pending:
            cls.pending = False
            raise KeyboardInterrupt


def _markdown(
    machine: dict[str, Any], rows: list[Row], meta: dict[str, Any], notes: list[str]
) -> str:
    lines = [
        "# addtolib benchmarks",
        "",
        f"- When: {meta['started']} ({meta['mode']} run, {meta['duration_s']:.0f} s in all)",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['python']}",
        f"- {', '.join(f'{k} {v}' for k, v in machine['packages'].items())}",
        f"- CPU pinning: {meta['pinning']}",
        "- Other processes' share of the machine's CPU during each benchmark (a shared machine "
        "makes latencies noisy): "
        + ", ".join(
            f"{title.split('. ', 1)[-1]} {cpu['foreign_share_of_machine']:.0%}"
            for title, cpu in meta["foreign_cpu"].items()
        ),
        "",
        TABLE_HEADER,
        *(row.markdown() for row in rows),
        "",
    ]
    if notes:
        lines += ["Notes:", "", *(f"- {note}" for note in notes), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts: a smoke run")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only NAME")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, DBs)")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not give the servers under test a CPU of their own",
    )
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)

    signal.signal(signal.SIGTERM, _Signals.handle)
    signal.signal(signal.SIGINT, _Signals.handle)
    machine = machine_info()
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['python']}")
    print(f"Python packages: {', '.join(f'{k} {v}' for k, v in machine['packages'].items())}")
    started = datetime.now(UTC)
    clock = time.monotonic()
    work_dir = Path(tempfile.mkdtemp(prefix="addtolib-bench-"))
    ctx = Context(work_dir, quick=args.quick, pin=not args.no_pin)
    print(f"CPU pinning: {ctx.pinning}")
    rows: list[Row] = []
    results: dict[str, Any] = {}
    loads: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    failed = interrupted = False
    print(TABLE_HEADER, flush=True)
    try:
        for name in names:
            module = importlib.import_module(f"benchmarks.{name}")
            print(f"<!-- {module.TITLE}: running -->", flush=True)
            meter = CpuMeter()
            try:
                outcome: Outcome = module.run(ctx)
            except Exception as exc:
                failed = True
                traceback.print_exc()
                outcome = Outcome([Row(module.TITLE, "run", f"error: {exc}"[:200], met=False)])
            finally:
                _Signals.stop_all(ctx)
            cpu = meter.stop()
            outcome.details["seconds"] = cpu["wall_s"]
            outcome.details["cpu"] = cpu
            loads[module.TITLE] = cpu
            print(
                f"<!-- {module.TITLE}: {cpu['wall_s']:.0f} s; other processes on this machine "
                f"used {cpu['foreign_share_of_machine']:.0%} of its CPU meanwhile -->",
                flush=True,
            )
            results[name] = outcome.to_json()
            rows.extend(outcome.rows)
            notes.extend(f"{module.TITLE}: {note}" for note in outcome.notes)
            for row in outcome.rows:
                print(row.markdown(), flush=True)
    except KeyboardInterrupt:
        failed = interrupted = True
        print("interrupted; stopping everything started", file=sys.stderr)
    finally:
        _Signals.cleaning = True
        ctx.stop_all()

    meta = {
        "started": started.isoformat(timespec="seconds"),
        "mode": ("quick" if args.quick else "full") + (", INTERRUPTED" if interrupted else ""),
        "duration_s": time.monotonic() - clock,
        "only": args.only,
    }
    meta["pinning"] = ctx.pinning
    meta["foreign_cpu"] = loads
    markdown = _markdown(machine, rows, meta, notes)
    print()
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(markdown)
    report = {"machine": machine, **meta, "benchmarks": results}
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"Wrote {RESULTS / 'latest.md'} and latest.json in {meta['duration_s']:.0f} s")
    if failed or args.keep:
        print(f"Logs kept in {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
