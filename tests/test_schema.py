"""Alembic migrations: a new database, a first-release database, and metadata in step."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.core import schema
from bot.core.store import OperationStore
from bot.core.tables import metadata


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


def test_migrate_command(database_url: str, tmp_path) -> None:
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "bot", "migrate"]
    first = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from nothing to {schema.head_revision()}" in first.stdout
    again = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"already at revision {schema.head_revision()}" in again.stdout
