"""The first release's database (commit b719c28), frozen: its DDL and rows as it wrote them.

Never import the current store here: this is what deployed databases look like, whatever
store.py becomes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

_COLUMNS_DDL = """
CREATE TABLE operations (
    id VARCHAR(32) NOT NULL,
    state VARCHAR(16) NOT NULL,
    team_id VARCHAR(64),
    channel_id VARCHAR(64),
    user_id VARCHAR(64) NOT NULL,
    library_id VARCHAR(64),
    library_name TEXT,
    requested_ids JSON NOT NULL,
    new_ids JSON NOT NULL,
    present_ids JSON NOT NULL,
    missing_ids JSON NOT NULL,
    added_ids JSON NOT NULL,
    failed_ids JSON NOT NULL,
    removed_ids JSON NOT NULL,
    outcome JSON NOT NULL,
    errors JSON NOT NULL,
    response_url TEXT,
    summary_channel VARCHAR(64),
    summary_ts VARCHAR(32),
    notify_channel VARCHAR(64),
    notify_ts VARCHAR(32),
    confirmed_by VARCHAR(64),
    undone_by VARCHAR(64),
    denial_reason TEXT,
    error TEXT,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    confirmed_at {ts},
    finished_at {ts},
    undone_at {ts},
    PRIMARY KEY (id)
)
"""
INDEXES = [
    "CREATE INDEX ix_operations_library_created ON operations (library_id, created_at)",
    "CREATE INDEX ix_operations_state ON operations (state)",
    "CREATE INDEX ix_operations_user_created ON operations (user_id, created_at)",
]
_TIMESTAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP WITH TIME ZONE"}

LIBRARY = "f6125eeb1a58cb4310952b35a1b41037"
A, B, C = "97fbacb3d224e5dd28cd9226f060adb0", "efc12e1cae77aa6283be8c329582b5a9", "0a1b2c3d"
T0 = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)
T1 = datetime(2026, 11, 20, 9, 31, 2, 5, tzinfo=UTC)

#: What the first release stored: one row per state a user could leave behind.
ROWS: list[dict[str, Any]] = [
    {
        "id": "1" * 32,
        "state": "done",
        "team_id": "T0001",
        "channel_id": "C0GENERAL",
        "user_id": "U0USER",
        "library_id": LIBRARY,
        "library_name": "Marketing Library",
        "requested_ids": [A, B, C],
        "new_ids": [A, B],
        "present_ids": [],
        "missing_ids": [C],
        "added_ids": [A, B],
        "failed_ids": [],
        "removed_ids": [],
        "outcome": {A: "added", B: "added", C: "not found"},
        "errors": [],
        "response_url": "https://hooks.slack.com/commands/T0001/1/abc",
        "summary_channel": "C0GENERAL",
        "summary_ts": "1732000000.000100",
        "notify_channel": "C0NOTIFY",
        "notify_ts": "1732000000.000200",
        "confirmed_by": "U0USER",
        "created_at": T0,
        "updated_at": T1,
        "confirmed_at": T0,
        "finished_at": T1,
    },
    {
        "id": "2" * 32,
        "state": "partial",
        "user_id": "U0OTHER",
        "library_id": LIBRARY,
        "library_name": "Marketing “Library” — ünïcode",
        "requested_ids": [A, B],
        "new_ids": [A, B],
        "added_ids": [A],
        "failed_ids": [B],
        "outcome": {A: "added", B: "failed: Uplynk kept failing"},
        "errors": ["batch 2 of 2 (efc12e1c…): Uplynk kept failing"],
        "error": "batch 2 of 2 (efc12e1c…): Uplynk kept failing",
        "created_at": T0,
        "updated_at": T1,
        "finished_at": T1,
    },
    {"id": "3" * 32, "state": "pending", "user_id": "U0USER", "created_at": T1, "updated_at": T1},
    {
        "id": "4" * 32,
        "state": "undone",
        "user_id": "U0ADMIN",
        "library_id": LIBRARY,
        "new_ids": [C],
        "added_ids": [C],
        "removed_ids": [C],
        "outcome": {C: "removed by undo"},
        "undone_by": "U0ADMIN",
        "created_at": T0,
        "updated_at": T1,
        "finished_at": T0,
        "undone_at": T1,
    },
    {
        "id": "5" * 32,
        "state": "denied",
        "user_id": "U0NOBODY",
        "denial_reason": "you are not named in any [[allow]] entry",
        "created_at": T0,
        "updated_at": T0,
        "finished_at": T0,
    },
]
_JSON = ("requested_ids", "new_ids", "present_ids", "missing_ids", "added_ids", "failed_ids",
         "removed_ids", "outcome", "errors")  # fmt: skip
_TIMES = ("created_at", "updated_at", "confirmed_at", "finished_at", "undone_at")


def create(engine: Engine) -> None:
    """Create the first release's table and write ROWS the way it wrote them."""
    dialect = engine.dialect.name
    with engine.begin() as conn:
        conn.execute(text(_COLUMNS_DDL.format(ts=_TIMESTAMP[dialect])))
        for statement in INDEXES:
            conn.execute(text(statement))
        for row in ROWS:
            values = {}
            for name, value in row.items():
                if name in _TIMES and value is not None:
                    # SQLite got naive UTC text; PostgreSQL a timestamptz.
                    value = value.replace(tzinfo=None) if dialect == "sqlite" else value
                values[name] = value
            for name in _JSON:
                values[name] = json.dumps(row.get(name, {} if name == "outcome" else []))
            names = list(values)
            cast = "CAST(:{0} AS JSON)" if dialect == "postgresql" else ":{0}"
            placeholders = [cast.format(n) if n in _JSON else f":{n}" for n in names]
            columns, holders = ", ".join(names), ", ".join(placeholders)
            conn.execute(text(f"INSERT INTO operations ({columns}) VALUES ({holders})"), values)
