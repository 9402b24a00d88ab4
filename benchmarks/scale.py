"""Benchmark 8: 1,000,000 operations (with their journal and outbox rows) on SQLite and
PostgreSQL: history by user and by library, App Home's queries, an outbox claim, and a prune.

PostgreSQL is measured when ADDTOLIB_BENCH_POSTGRES_URL names a server (a database of its own
is created there and dropped afterwards); SQLite always, in the work directory.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from benchmarks.harness import Context, Outcome, Row, median
from bot.core import retention
from bot.core.delivery.outbox import Outbox
from bot.core.store import OperationStore, normalize_url
from bot.core.tables import batches, operations, outbox

NAME = "scale"
TITLE = "8. Scale"
POSTGRES_ENV = "ADDTOLIB_BENCH_POSTGRES_URL"
USERS, LIBRARIES = 1000, 200
SPAN_DAYS = 365  # the operations' ages spread evenly over a year
RETENTION_DAYS = 30
CHUNK = 100_000  # rows a seeding statement inserts
QUEUED = 1000  # outbox entries due when the claim is measured
GOAL_MS = 50.0  # a history page, an App Home query, a claim: well under Slack's 3 s


def run(ctx: Context) -> Outcome:
    count = 50_000 if ctx.quick else 1_000_000
    rows: list[Row] = []
    details: dict[str, Any] = {}
    targets = [("SQLite", f"sqlite:///{ctx.work_dir / 'scale.db'}", None)]
    admin = os.environ.get(POSTGRES_ENV, "").strip()
    if admin:
        targets.append(("PostgreSQL", *_pg_database(admin)))
    notes = [] if admin else [f"PostgreSQL not measured: set {POSTGRES_ENV} to a server's URL"]
    for label, url, drop in targets:
        try:
            found = _measure(url, count, ctx.log)
        finally:
            if drop is not None:
                drop()
        details[label] = found
        rows.extend(_rows(label, count, found))
    return Outcome(rows, details, notes)


def _pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    admin = normalize_url(admin_url)
    name = f"addtolib_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    url: URL = admin.set(database=name)
    return url.render_as_string(hide_password=False), drop


# ----------------------------------------------------------------------------- seeding


def _seed(store: OperationStore, count: int, now: datetime) -> None:
    """`count` operations (one journal batch and two delivered outbox entries each), by
    INSERT ... SELECT over a generated series, `CHUNK` rows a statement."""
    pg = store.engine.dialect.name == "postgresql"
    hexid = (lambda e: f"lpad(to_hex({e}), 32, '0')") if pg else (lambda e: f"printf('%032x', {e})")
    js = (lambda e: f"CAST({e} AS json)") if pg else (lambda e: e)
    step = SPAN_DAYS * 86400 / count  # seconds between two operations
    if pg:
        at = (
            "(CAST(:now AS timestamptz) - "
            f"CAST((:n - i) * {step} AS double precision) * interval '1 second')"
        )
    else:  # UTCDateTime's SQLite text: 'YYYY-MM-DD HH:MM:SS.ffffff', naive UTC
        at = (
            f"(strftime('%Y-%m-%d %H:%M:%f', :now, '-' || ((:n - i) * {step}) || ' seconds')"
            " || '000')"
        )
    op_id, asset = hexid("i"), "'[\"' || " + hexid("i + 7") + " || '\"]'"
    state = (
        "CASE WHEN i % 1000 = 0 THEN 'awaiting_approval' WHEN i % 10 = 0 THEN 'partial' "
        "ELSE 'done' END"
    )
    selects = {
        operations: (
            "id, state, team_id, channel_id, user_id, library_id, library_name, requested_ids, "
            "new_ids, present_ids, missing_ids, added_ids, failed_ids, removed_ids, outcome, "
            "errors, created_at, updated_at, finished_at",
            f"{op_id}, {state}, 'T1', 'C' || (i % 50), 'U' || (i % {USERS}), "
            f"{hexid(f'1000000000 + i % {LIBRARIES}')}, 'Library ' || (i % {LIBRARIES}), "
            f"{js(asset)}, {js(asset)}, {js(chr(39) + '[]' + chr(39))}, "
            f"{js(chr(39) + '[]' + chr(39))}, {js(asset)}, {js(chr(39) + '[]' + chr(39))}, "
            f"{js(chr(39) + '[]' + chr(39))}, {js(chr(39) + '{}' + chr(39))}, "
            f"{js(chr(39) + '[]' + chr(39))}, {at}, {at}, {at}",
        ),
        batches: (
            "operation_id, run_token, kind, number, asset_ids, state, started_at, finished_at",
            f"{op_id}, 'r', 'add', 1, {js(asset)}, 'done', {at}, {at}",
        ),
    }
    entry = (
        "operation_id, lane, kind, channel, template, args, key, state, attempts, lost, "
        "due_at, created_at, updated_at, sent_at, result_channel, result_ts"
    )
    for template, key in (("summary", "summary"), ("notify_parent", "notify")):
        selects[(outbox, template)] = (
            entry,
            f"{op_id}, {op_id}, 'post', 'C1', '{template}', {js(chr(39) + '{}' + chr(39))}, "
            f"'{key}', 'sent', 1, 0, {at}, {at}, {at}, {at}, 'C1', '1.0'",
        )
    # The indexes are built once the rows are in: far quicker than row by row.
    tables = (operations, batches, outbox)
    with store.connect(begin=True) as conn:
        for table in tables:
            for index in table.indexes:
                index.drop(conn)
    for target, (columns, values) in selects.items():
        table = target[0] if isinstance(target, tuple) else target
        for start in range(1, count + 1, CHUNK):
            end = min(count, start + CHUNK - 1)
            if pg:
                sql = (
                    f"INSERT INTO {table.name} ({columns}) SELECT {values} "
                    "FROM generate_series(CAST(:start AS bigint), CAST(:end AS bigint)) AS i"
                )
            else:
                sql = (
                    "WITH RECURSIVE s(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM s "
                    f"WHERE i < :end) INSERT INTO {table.name} ({columns}) SELECT {values} FROM s"
                )
            params = {"start": start, "end": end, "n": count, "now": _param_time(now, pg)}
            with store.connect(begin=True) as conn:
                conn.execute(text(sql), params)
    with store.connect(begin=True) as conn:
        for table in tables:
            for index in table.indexes:
                index.create(conn)
    if pg:  # what autovacuum does after such a load; the bot never ANALYZEs SQLite
        with store.connect(begin=True) as conn:
            conn.execute(text("ANALYZE"))


def _param_time(now: datetime, pg: bool) -> str:
    return now.isoformat() if pg else now.strftime("%Y-%m-%d %H:%M:%S")


def _queue_due(store: OperationStore, count: int) -> None:
    """Entries due now, one per recent operation (each heads its lane: the rest are sent)."""
    with store.connect(begin=True) as conn:
        ids = conn.execute(
            select(operations.c.id).order_by(operations.c.created_at.desc()).limit(QUEUED)
        ).scalars()
        now = datetime.now(UTC) - timedelta(seconds=1)
        conn.execute(
            outbox.insert(),
            [
                {
                    "operation_id": i,
                    "lane": i,
                    "kind": "post",
                    "channel": "C1",
                    "template": "event",
                    "args": {"text": "x"},
                    "state": "queued",
                    "attempts": 0,
                    "lost": 0,
                    "due_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )


# ----------------------------------------------------------------------------- measuring


def _timed(call: Callable[[], Any], times: int) -> tuple[float, float]:
    """Median and max of `times` calls, in ms."""
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        spent.append((time.perf_counter() - began) * 1000)
    return median(spent), max(spent)


def _measure(url: str, count: int, log: Callable[..., Any]) -> dict[str, Any]:
    store = OperationStore(url)
    found: dict[str, Any] = {}
    try:
        store.create_schema()
        began = time.monotonic()
        _seed(store, count, datetime.now(UTC))
        found["seed_s"] = time.monotonic() - began
        log(f"<!-- {TITLE}: {store.engine.dialect.name} seeded in {found['seed_s']:.0f} s -->")
        users = iter(range(10**6))
        found["history_user_ms"] = _timed(
            lambda: store.recent(user_id=f"U{next(users) % USERS}", limit=15), 50
        )
        libs = iter(range(10**6))
        lib_ids = [f"{1_000_000_000 + n:032x}" for n in range(LIBRARIES)]
        found["history_library_ms"] = _timed(
            lambda: store.recent(library_id=lib_ids[next(libs) % LIBRARIES], limit=15), 50
        )
        found["history_all_ms"] = _timed(lambda: store.recent(limit=15), 50)
        waiting = (
            select(operations)
            .where(operations.c.state == "awaiting_approval")
            .order_by(operations.c.created_at.desc())
            .limit(20)
        )

        def approvals() -> None:
            with store.connect(begin=False) as conn:
                conn.execute(waiting).all()

        found["app_home_waiting_ms"] = _timed(approvals, 50)
        _queue_due(store, QUEUED)
        box = Outbox(store)
        found["outbox_stats_ms"] = _timed(box.stats, 20)
        claimed = []

        def claim() -> None:
            entry = box.candidates(limit=1)[0]
            got = box.claim(entry.id)
            assert got is not None
            box.sent(got, "C1", "2.0")
            claimed.append(got.id)

        found["claim_ms"] = _timed(claim, 100)
        with store.connect(begin=False) as conn:
            before = (
                conn.execute(select(func.count()).select_from(outbox)).scalar_one(),
                conn.execute(select(func.count()).select_from(batches)).scalar_one(),
            )
        began = time.monotonic()
        pruned = retention.prune(store, RETENTION_DAYS)
        found["prune_s"] = time.monotonic() - began
        found["pruned"] = (pruned.outbox, pruned.batches)
        found["before"] = before
        began = time.monotonic()
        again = retention.prune(store, RETENTION_DAYS)
        found["prune_again_ms"] = (time.monotonic() - began) * 1000
        found["pruned_again"] = (again.outbox, again.batches)
        found["history_user_after_ms"] = _timed(
            lambda: store.recent(user_id=f"U{next(users) % USERS}", limit=15), 50
        )
    finally:
        store.dispose()
    return found


def _rows(label: str, count: int, m: dict[str, Any]) -> list[Row]:
    title = f"{TITLE} ({label})"
    ops = f"{count:,} operations"

    def ms(key: str) -> str:
        mid, top = m[key]
        return f"{mid:.1f} ms (max {top:.1f})"

    def met(*keys: str) -> bool:  # the median: a shared machine's stalls make the max noise
        return all(m[k][0] < GOAL_MS for k in keys)

    goal = f"median < {GOAL_MS:.0f} ms"
    return [
        Row(
            title, f"seed {ops}, 1 journal batch and 2 outbox entries each", f"{m['seed_s']:.0f} s"
        ),
        Row(
            title,
            f"history page (15) of a user ({count // USERS:,} operations each), median of 50",
            ms("history_user_ms"),
            goal=goal,
            met=met("history_user_ms"),
        ),
        Row(
            title,
            f"history page (15) of a library ({count // LIBRARIES:,} operations each)",
            ms("history_library_ms"),
            goal=goal,
            met=met("history_library_ms"),
        ),
        Row(
            title,
            "history page (15), everyone's (admin)",
            ms("history_all_ms"),
            goal=goal,
            met=met("history_all_ms"),
        ),
        Row(
            title,
            f"App Home: waiting approvals (20 of {count // 1000:,})",
            ms("app_home_waiting_ms"),
            goal=goal,
            met=met("app_home_waiting_ms"),
        ),
        Row(
            title,
            f"outbox claim: next due entry, claim, record sent ({QUEUED} due among "
            f"{m['before'][0]:,} rows)",
            ms("claim_ms"),
            goal=goal,
            met=met("claim_ms"),
        ),
        Row(
            title,
            "outbox stats (the /metrics refresh)",
            ms("outbox_stats_ms"),
            goal=goal,
            met=met("outbox_stats_ms"),
        ),
        Row(
            title,
            f"first prune, {RETENTION_DAYS}-day retention (of {m['before'][0]:,} outbox rows, "
            f"{m['before'][1]:,} batches)",
            f"{m['prune_s']:.1f} s: {m['pruned'][0]:,} entries, {m['pruned'][1]:,} batches "
            f"deleted; then again: {m['prune_again_ms']:.0f} ms",
        ),
        Row(
            title,
            "history page of a user after the prune",
            ms("history_user_after_ms"),
            goal=goal,
            met=met("history_user_after_ms"),
        ),
    ]
