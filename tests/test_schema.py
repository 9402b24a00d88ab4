"""Alembic migrations: a new database, a first-release database, and metadata in step."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.core import schema
from bot.core.store import OperationStore, metadata


def test_new_database_is_migrated_to_head(store: OperationStore) -> None:
    assert schema.current_revision(store.engine) == schema.head_revision()
    assert schema.is_current(store.engine)
    assert inspect(store.engine).has_table("operations")


def test_migrations_build_exactly_the_metadata(store: OperationStore) -> None:
    # Every table, column and index the code declares comes from a migration, and no more.
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_twice_is_harmless(store: OperationStore) -> None:
    created = store.create(user_id="U1")
    assert schema.upgrade(store.engine) == schema.head_revision()
    store.create_schema()
    assert store.get(created.id) == created


def test_unstamped_first_release_table_is_stamped_not_recreated(database_url: str) -> None:
    first = OperationStore(database_url)
    try:
        schema.upgrade(first.engine, schema.BASELINE)  # the first release's table only
        with first.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO operations (id, state, user_id, library_id, requested_ids,"
                    " new_ids, present_ids, missing_ids, added_ids, failed_ids, removed_ids,"
                    " outcome, errors, created_at, updated_at) VALUES ('" + "a" * 32 + "',"
                    " 'done', 'U1', '" + "f" * 32 + "', '[]', '[]', '[]', '[]', '[]', '[]',"
                    " '[]', '{}', '[]', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
        with first.engine.begin() as conn:  # what a first-release database looks like
            conn.execute(text("DROP TABLE alembic_version"))
        assert schema.current_revision(first.engine) is None
        first.create_schema()
        assert schema.is_current(first.engine)
        kept = first.get("a" * 32)
        assert kept is not None and kept.state == "done" and kept.library_id == "f" * 32
    finally:
        first.dispose()


def test_migrate_command(database_url: str, tmp_path) -> None:
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "bot", "migrate"]
    first = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from nothing to {schema.head_revision()}" in first.stdout
    again = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"already at revision {schema.head_revision()}" in again.stdout
