"""A database at every released revision, with rows in it, upgrades to the head (docs/SPEC.md
§16): its rows are kept and readable, the current code acts on them, and the schema is then
exactly the one a new database gets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, create_engine, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from bot.core import schema
from bot.core.approvals.store import ApprovalStore
from bot.core.delivery.outbox import Outbox
from bot.core.journal import BatchJournal
from bot.core.store import OperationStore
from bot.core.tables import metadata

#: Every revision a release shipped as its head, oldest first (the chain's order).
RELEASED = ["0001", "0003", "0005", "0002", "0006"]

T0 = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)
DONE_ID, PARTIAL_ID = "a" * 32, "b" * 32
LIBRARY = "f6125eeb1a58cb4310952b35a1b41037"


def test_released_revisions_are_the_chain_in_order() -> None:
    script = ScriptDirectory.from_config(schema.alembic_config())
    chain = [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]
    assert chain[: len(RELEASED)] == RELEASED
    # Files named in chain order: sorted by name, they are the chain.
    files = sorted(r.path.rsplit("/", 1)[-1] for r in script.walk_revisions())
    assert [f.split("_")[1] for f in files] == chain


def _rows() -> dict[str, list[dict[str, Any]]]:
    operation = {
        "team_id": "T1",
        "channel_id": "C0GENERAL",
        "user_id": "U0USER",
        "library_id": LIBRARY,
        "library_name": "Marketing Library",
        "requested_ids": ["a1", "a2"],
        "new_ids": ["a1", "a2"],
        "present_ids": [],
        "missing_ids": [],
        "removed_ids": [],
        "outcome": {},
        "errors": [],
        "created_at": T0,
        "updated_at": T0,
        "finished_at": T0,
        "asset_titles": {"a1": "Clip one"},
    }
    return {
        "operations": [
            {**operation, "id": DONE_ID, "state": "done", "added_ids": ["a1", "a2"]}
            | {"failed_ids": [], "summary_channel": "C0GENERAL", "summary_ts": "1.000100"},
            {**operation, "id": PARTIAL_ID, "state": "partial", "added_ids": ["a1"]}
            | {"failed_ids": ["a2"], "errors": ["batch 2: Uplynk is busy"]},
        ],
        "approval_requests": [
            {"operation_id": DONE_ID, "titles": {"a1": "Clip one"}, "messages": []},
        ],
        "approvals": [{"operation_id": DONE_ID, "approver": "U0LEAD", "approved_at": T0}],
        "outbox": [
            _entry(DONE_ID, "summary", "sent", key="summary", result_ts="1.000100"),
            _entry(PARTIAL_ID, "summary", "queued", key="summary"),
        ],
        "operation_batches": [
            {
                "operation_id": PARTIAL_ID,
                "run_token": "c" * 32,
                "kind": "add",
                "number": 2,
                "asset_ids": ["a2"],
                "state": "failed",
                "started_at": T0,
                "finished_at": T0,
            }
        ],
    }


def _entry(op_id: str, template: str, state: str, **more: Any) -> dict[str, Any]:
    return {
        "operation_id": op_id,
        "lane": op_id,
        "kind": "post",
        "channel": "C0GENERAL",
        "template": template,
        "args": {},
        "state": state,
        "attempts": 1 if state == "sent" else 0,
        "lost": 0,
        "due_at": T0,
        "created_at": T0,
        "updated_at": T0,
        **more,
    }


def _fill(engine: Engine) -> set[str]:
    """Insert the rows whose tables exist at this revision (columns it has); their tables."""
    filled = set()
    with engine.begin() as conn:
        existing = set(inspect(conn).get_table_names())
        for name, rows in _rows().items():
            if name not in existing:
                continue
            table = Table(name, MetaData(), autoload_with=conn)
            for row in rows:
                conn.execute(table.insert().values({k: v for k, v in row.items() if k in table.c}))
            filled.add(name)
    return filled


@pytest.mark.parametrize("revision", RELEASED)
def test_a_database_at_each_released_revision_upgrades_to_head(
    database_url: str, revision: str
) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        schema.upgrade(engine, revision)
        assert schema.current_revision(engine) == revision
        filled = _fill(engine)
        assert schema.upgrade(engine) == revision
        assert schema.is_current(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()

    store = OperationStore(database_url)
    try:
        done, partial = store.get(DONE_ID), store.get(PARTIAL_ID)
        assert done.state == "done" and done.added_ids == ["a1", "a2"]
        assert done.summary_ts == "1.000100" and done.created_at == T0
        assert partial.failed_ids == ["a2"] and partial.errors == ["batch 2: Uplynk is busy"]
        assert {o.id for o in store.recent(user_id="U0USER")} == {DONE_ID, PARTIAL_ID}
        assert [o.id for o in store.recent(library_id=LIBRARY, limit=1)] == [PARTIAL_ID]
        assert partial.library_facts == {}  # previewed before facts were stored
        entries = Outbox(store).entries()
        if "outbox" in filled:
            assert [(e.template, e.state) for e in entries] == [
                ("summary", "sent"),
                ("summary", "queued"),
            ]
            # Summaries queued before the upgrade count as queued: none is queued again.
            assert done.summary_queued_at == T0 and partial.summary_queued_at == T0
            claimed = Outbox(store).claim(entries[1].id)
            assert claimed is not None and claimed.calling_at is None and claimed.lost == 0
        else:
            assert entries == [] and done.summary_queued_at is None
        if "operation_batches" in filled:
            (batch,) = BatchJournal(store).entries(PARTIAL_ID)
            assert (batch.number, batch.asset_ids, batch.state) == (2, ["a2"], "failed")
        if "approvals" in filled:
            approvals = ApprovalStore(store)
            assert approvals.approvers_of([DONE_ID]) == {DONE_ID: ["U0LEAD"]}
            assert approvals.get(DONE_ID) is not None
        # The current code acts on the old rows.
        assert store.transition(PARTIAL_ID, "partial", "running", run_token="d" * 32)
        assert store.transition(DONE_ID, "done", "undone", undone_by="U0USER") is not None
    finally:
        store.dispose()
