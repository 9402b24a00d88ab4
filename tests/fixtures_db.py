"""Database fixtures: SQLite by default, a fresh PostgreSQL database per test when configured."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from bot.core.store import OperationStore, normalize_url

POSTGRES_ENV = "ADDTOLIB_TEST_POSTGRES_URL"


def postgres_admin_url() -> URL | None:
    """The admin URL from ADDTOLIB_TEST_POSTGRES_URL, or None when tests use SQLite."""
    raw = os.environ.get(POSTGRES_ENV, "").strip()
    return normalize_url(raw) if raw else None


def pytest_report_header(config: pytest.Config) -> str:
    url = postgres_admin_url()
    if url is None:
        return "database: sqlite (set ADDTOLIB_TEST_POSTGRES_URL for PostgreSQL)"
    return f"database: postgresql ({url.host or 'localhost'}:{url.port or 5432})"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of its own for this test.

    With ADDTOLIB_TEST_POSTGRES_URL set, a database ``addtolib_test_<hex>`` is created on that
    server and dropped afterwards; an unreachable server is an error, never a skip.
    """
    admin_url = postgres_admin_url()
    if admin_url is None:
        yield f"sqlite:///{tmp_path / 'addtolib.db'}"
        return

    name = f"addtolib_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(
        admin_url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 10},
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[OperationStore]:
    """An OperationStore on this test's database, schema created, disposed afterwards."""
    operation_store = OperationStore(database_url)
    operation_store.create_schema()
    try:
        yield operation_store
    finally:
        operation_store.dispose()
