"""Database fixtures: SQLite by default, a fresh PostgreSQL database per test when configured.

Migrating costs more than copying: each xdist worker migrates one template database once, and
tests that want a migrated database get a copy of it (a file copy on SQLite, ``CREATE DATABASE
... TEMPLATE`` on PostgreSQL). ``database_url`` stays empty for tests of migrating itself."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
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


@contextmanager
def postgres_database(admin_url: URL, template: str | None = None) -> Iterator[str]:
    """A database ``addtolib_test_<hex>`` on the admin URL's server (a copy of `template`),
    dropped afterwards; an unreachable server is an error, never a skip. Yields its URL."""
    name = f"addtolib_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(
        admin_url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 10},
    )
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of its own for this test (SQLite, or PostgreSQL when
    ADDTOLIB_TEST_POSTGRES_URL is set)."""
    admin_url = postgres_admin_url()
    if admin_url is None:
        yield f"sqlite:///{tmp_path / 'addtolib.db'}"
        return
    with postgres_database(admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This worker's template: a SQLite file path, or a PostgreSQL database name, migrated."""
    admin_url = postgres_admin_url()
    if admin_url is None:
        path = tmp_path_factory.mktemp("template") / "addtolib.db"
        migrate(f"sqlite:///{path}")
        yield str(path)
        return
    with postgres_database(admin_url) as url:
        migrate(url)
        yield make_url(url).database or ""


def migrate(url: str) -> None:
    template = OperationStore(url)
    try:
        template.create_schema()
    finally:
        template.dispose()


@pytest.fixture
def migrated_database_url(tmp_path: Path, migrated_template: str) -> Iterator[str]:
    """A URL to a database of its own for this test, already at the newest schema."""
    admin_url = postgres_admin_url()
    if admin_url is None:
        path = tmp_path / "addtolib.db"
        shutil.copyfile(migrated_template, path)
        yield f"sqlite:///{path}"
        return
    with postgres_database(admin_url, template=migrated_template) as url:
        yield url


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[OperationStore]:
    """An OperationStore on this test's database, schema created, disposed afterwards."""
    operation_store = OperationStore(migrated_database_url)
    operation_store.create_schema()
    try:
        yield operation_store
    finally:
        operation_store.dispose()
