"""A database written by the first release keeps every operation through `upgrade head`."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from bot.core import schema
from bot.core.store import OperationStore
from tests import first_release
from tests.bot_process import REPO_ROOT


def test_first_release_database_upgrades_with_every_operation_readable(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    first_release.create(engine)
    assert schema.current_revision(engine) is None
    engine.dispose()

    result = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    store = OperationStore(database_url)
    try:
        assert schema.is_current(store.engine)
        store.create_schema()  # start-up after the upgrade: a no-op
        found = {op.id: op for op in store.recent(limit=100)}
        assert set(found) == {row["id"] for row in first_release.ROWS}
        for row in first_release.ROWS:
            operation = store.get(row["id"])
            assert operation == found[row["id"]]
            for name, value in row.items():
                assert getattr(operation, name) == value, name
        # The current code can still act on old rows (compare-and-set on a first-release row).
        done = first_release.ROWS[0]["id"]
        undone = store.transition(done, "done", "undone", undone_by="U0USER")
        assert undone is not None and undone.added_ids == first_release.ROWS[0]["added_ids"]
        assert store.transition("3" * 32, "pending", "expired") is not None
    finally:
        store.dispose()
