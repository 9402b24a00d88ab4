"""Database schema versions: Alembic migrations applied at start-up and by `bot migrate`."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

#: The revision that describes the first release's schema (before Alembic was used).
BASELINE = "0001"
# Any fixed number: every instance takes the same PostgreSQL advisory lock while migrating.
_PG_LOCK_KEY = 0x616464746F6C6962  # "addtolib"


def alembic_config() -> Config:
    """Alembic's configuration, pointing at the migrations shipped inside the package."""
    config = Config()
    config.set_main_option("script_location", "bot:migrations")
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or BASELINE


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no Alembic stamp; maybe a first-release DB)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to `revision`; returns the revision it was at before.

    A database written by the first release has the operations table but no Alembic stamp:
    it is stamped as the baseline first, so its rows are kept and only later changes run.
    Instances starting together take a lock, so exactly one of them migrates.
    """
    with _migration_lock(engine), engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        config = alembic_config()
        config.attributes["connection"] = conn
        if before is None and inspect(conn).has_table("operations"):
            log.info("database from the first release: stamping it as revision %s", BASELINE)
            command.stamp(config, BASELINE)
        command.upgrade(config, revision)
    after = current_revision(engine)
    if after != before:
        log.info("database schema upgraded from %s to %s", before or "nothing", after)
    return before


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        with engine.connect() as conn:
            _pg_lock(conn, True)
            try:
                yield
            finally:
                _pg_lock(conn, False)
        return
    database = engine.url.database if backend == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".migrate-lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pg_lock(conn: Connection, take: bool) -> None:
    name = "pg_advisory_lock" if take else "pg_advisory_unlock"
    conn.execute(text(f"SELECT {name}(:key)"), {"key": _PG_LOCK_KEY})
    conn.commit()
