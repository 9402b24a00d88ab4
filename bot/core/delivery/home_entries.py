"""App Home publishes in the outbox (docs/SPEC.md §14): one pending per user, paced per user."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from bot.core.tables import outbox


def insert_home(conn: Connection, row: dict[str, Any], now: datetime) -> bool:
    """Queue a Home publish for row["user_id"] unless one is already queued; returns whether a
    row was inserted.

    args["opened"]: the user opened the Home: due now (a queued refresh is brought forward).
    Otherwise a refresh: only for a user who has a Home (an earlier entry), and due no sooner
    than args["every"] seconds after the last publish.
    """
    user, args = row["user_id"], row["args"]
    mine = (outbox.c.kind == "home", outbox.c.user_id == user)
    queued = conn.execute(
        select(outbox.c.id, outbox.c.due_at).where(*mine, outbox.c.state == "queued").limit(1)
    ).first()
    if args.get("opened"):
        if queued is not None:
            conn.execute(outbox.update().where(outbox.c.id == queued[0]).values(due_at=now))
            return False
        conn.execute(outbox.insert().values(**row))
        return True
    if queued is not None:
        return False  # that one renders what the database holds when it is delivered
    last = conn.execute(  # when the last publish was claimed or made
        select(func.max(outbox.c.updated_at)).where(*mine, outbox.c.state != "queued")
    ).scalar()
    if last is None:
        return False  # never opened: Slack shows a Home nobody asked for to nobody
    if last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    due = max(now, last + timedelta(seconds=float(args.get("every") or 0)))
    conn.execute(outbox.insert().values(**{**row, "due_at": due}))
    return True
