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

from benchmarks.harness import TABLE_HEADER, Context, Outcome, Row, machine_info

BENCHMARKS = ("ack_latency", "bulk_add", "overhead", "memory")
RESULTS = Path(__file__).resolve().parent / "results"


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _markdown(machine: dict[str, Any], rows: list[Row], meta: dict[str, Any]) -> str:
    lines = [
        "# addtolib benchmarks",
        "",
        f"- When: {meta['started']} ({meta['mode']} run, {meta['duration_s']:.0f} s in all)",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['python']}",
        f"- {', '.join(f'{k} {v}' for k, v in machine['packages'].items())}",
        "",
        TABLE_HEADER,
        *(row.markdown() for row in rows),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts: a smoke run")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only NAME")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, DBs)")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)

    signal.signal(signal.SIGTERM, _on_sigterm)
    machine = machine_info()
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['python']}")
    started = datetime.now(UTC)
    clock = time.monotonic()
    work_dir = Path(tempfile.mkdtemp(prefix="addtolib-bench-"))
    ctx = Context(work_dir, quick=args.quick)
    rows: list[Row] = []
    results: dict[str, Any] = {}
    failed = False
    print(TABLE_HEADER, flush=True)
    try:
        for name in names:
            module = importlib.import_module(f"benchmarks.{name}")
            began = time.monotonic()
            print(f"<!-- {module.TITLE}: running -->", flush=True)
            try:
                outcome: Outcome = module.run(ctx)
            except Exception as exc:  # noqa: BLE001 - one failure must not hide the others
                failed = True
                traceback.print_exc()
                outcome = Outcome([Row(module.TITLE, "run", f"error: {exc}"[:200], met=False)])
            finally:
                ctx.stop_all()
            outcome.details["seconds"] = round(time.monotonic() - began, 1)
            results[name] = outcome.to_json()
            rows.extend(outcome.rows)
            for row in outcome.rows:
                print(row.markdown(), flush=True)
    except KeyboardInterrupt:
        failed = True
        print("interrupted; stopping everything started", file=sys.stderr)
    finally:
        ctx.stop_all()

    meta = {
        "started": started.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "duration_s": time.monotonic() - clock,
        "only": args.only,
    }
    markdown = _markdown(machine, rows, meta)
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
