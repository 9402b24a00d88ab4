"""The operations table (docs/SPEC.md §5): SQLAlchemy Core storage, compare-and-set changes."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    create_engine,
    event,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from bot import metrics
from bot.core.delivery.outbox import insert_owed
from bot.core.operation import (
    COLUMNS,
    DICT_COLUMNS,
    LEASED,
    LIST_COLUMNS,
    STATES,
    TERMINAL,
    TIME_COLUMNS,
    Operation,
    State,
    check_transition,
)
from bot.core.tables import UTCDateTime, operations

log = logging.getLogger(__name__)

__all__ = ["OperationStore", "db_now", "normalize_url"]

# Columns a caller may never set directly.
_PROTECTED = frozenset({"id"})

_ID_RE = re.compile(r"^[0-9a-f]{32}$")

# Timestamps set automatically by transition() unless the caller passes them.
_CONFIRMED_AT_STATES = frozenset({State.CONFIRMED})
_FINISHED_AT_STATES = TERMINAL - {State.UNDONE}
_UNDONE_AT_STATES = frozenset({State.UNDONE})


def _utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain postgres:// and postgresql:// URLs use psycopg 3."""
    if isinstance(url, str):
        url = url.strip()
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _coerce_value(name: str, value: Any) -> Any:
    if name in LIST_COLUMNS:
        if value is None:
            return []
        if isinstance(value, str | bytes):
            raise TypeError(f"{name} must be a list of strings, not a string")
        if isinstance(value, set | frozenset):
            return sorted(value)
        return list(value)
    if name in DICT_COLUMNS:
        return dict(value or {})
    if name in TIME_COLUMNS and value is not None and not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    return value


def _check_fields(fields: Mapping[str, Any], *, allow_state: bool) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(COLUMNS))
    if unknown:
        raise TypeError(f"unknown operation field(s): {', '.join(unknown)}")
    protected = sorted(set(fields) & _PROTECTED)
    if protected:
        raise TypeError(f"operation field(s) cannot be set: {', '.join(protected)}")
    if "state" in fields:
        if not allow_state:
            raise ValueError("state changes go through transition(), not update()")
        fields = {**fields, "state": _check_state(fields["state"])}
    return {name: _coerce_value(name, value) for name, value in fields.items()}


def _check_state(state: Any) -> str:
    """The state's stored text (a plain str); ValueError for a state that does not exist."""
    if state not in STATES:
        raise ValueError(f"unknown operation state: {state!r}")
    return State(state).value


def _states(from_states: str | Iterable[str]) -> list[str]:
    states = [from_states] if isinstance(from_states, str) else list(from_states)
    if not states:
        raise ValueError("from_states must name at least one state")
    return sorted({_check_state(state) for state in states})


def _valid_id(op_id: Any) -> bool:
    return isinstance(op_id, str) and _ID_RE.match(op_id) is not None


def db_now(dialect_name: str, minus_seconds: float = 0) -> Any:
    """The database's clock as a SQL expression, comparable with stored UTCDateTime values.

    Leases use it on every side (set and compared), so that instances whose clocks differ
    agree on when a lease ran out. SQLite stores UTCDateTime as naive 'YYYY-MM-DD HH:MM:SS.ffffff'
    text: its strftime() gives milliseconds, padded to the same width so that strings compare
    in time order and read back as datetimes.
    """
    if dialect_name == "sqlite":
        # A float we format (no injection); negative: a clock ahead (the console's, §15).
        modifier = f"{-float(minus_seconds):+.6f} seconds"
        expr: ColumnElement[Any] = literal_column(
            f"(strftime('%Y-%m-%d %H:%M:%f', 'now', '{modifier}') || '000')"
        )
        return type_coerce(expr, UTCDateTime)
    now: ColumnElement[Any] = func.now()
    if minus_seconds:
        now = now - func.make_interval(0, 0, 0, 0, 0, 0, float(minus_seconds))
    return type_coerce(now, UTCDateTime)


def _requirements(require: Mapping[str, Any] | None) -> list[Any]:
    """WHERE clauses for `require` (column -> value; None means IS NULL)."""
    clauses = []
    for name, value in (require or {}).items():
        if name not in COLUMNS:
            raise TypeError(f"unknown operation field in require: {name}")
        column = operations.c[name]
        clauses.append(column.is_(None) if value is None else column == value)
    return clauses


def _update_statement(
    op_id: str, fields: dict[str, Any], require: Mapping[str, Any] | None = None
) -> Any:
    """The UPDATE that update() and save() run (None for a malformed id)."""
    values = _check_fields(fields, allow_state=False)
    if not _valid_id(op_id):
        return None
    values.setdefault("updated_at", _utcnow())
    where = [operations.c.id == op_id, *_requirements(require)]
    return operations.update().where(*where).values(**values)


class OperationStore:
    """Operations in a SQL database; every state change is an atomic compare-and-set."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
        backend = self.url.get_backend_name()
        if backend == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if _is_memory_sqlite(self.url):
                # One shared connection, or every thread would see its own empty database.
                kwargs["poolclass"] = StaticPool
        elif backend == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 10}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect(_is_memory_sqlite(self.url)))
        self._returning = bool(self.engine.dialect.update_returning)
        # An in-memory SQLite database is one shared connection: use it one thread at a time.
        self._lock = threading.RLock() if _is_memory_sqlite(self.url) else None
        # Called after a commit that queued outbox entries (the delivery worker wakes up).
        self.enqueue_listeners: list[Any] = []
        # Called with the fresh Operation after a transition into a terminal state commits
        # (a Workflow Builder step is completed, docs/SPEC.md §13); a listener's failure is
        # logged, never raised: the transition is made.
        self.finish_listeners: list[Any] = []

    def __repr__(self) -> str:
        return f"OperationStore({self.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> OperationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    # -- schema and lifecycle -------------------------------------------------------------

    def create_schema(self) -> None:
        """Bring the schema to the newest migration (a new database gets every table)."""
        from bot.core import schema  # Alembic's env imports this module's metadata

        schema.upgrade(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers a read of the operations table (GET /readyz)."""
        try:
            with self._connect(begin=False) as conn:
                conn.execute(select(operations.c.id).limit(1)).all()
        except Exception:
            return False
        return True

    # -- reads ----------------------------------------------------------------------------

    def get(self, op_id: str) -> Operation | None:
        """The operation with this id, or None (also for ids that are not 32 hex digits)."""
        if not _valid_id(op_id):
            return None
        with self._connect(begin=False) as conn:
            row = (
                conn.execute(select(operations).where(operations.c.id == op_id)).mappings().first()
            )
        return Operation.from_row(row) if row is not None else None

    def recent(
        self, user_id: str | None = None, library_id: str | None = None, limit: int = 20
    ) -> list[Operation]:
        """Operations in any state, newest first, optionally for one user and/or library."""
        if limit < 1:
            return []
        query = select(operations)
        if user_id is not None:
            query = query.where(operations.c.user_id == user_id)
        if library_id is not None:
            query = query.where(operations.c.library_id == library_id)
        query = query.order_by(operations.c.created_at.desc(), operations.c.id.desc()).limit(limit)
        with self._connect(begin=False) as conn:
            rows = conn.execute(query).mappings().all()
        return [Operation.from_row(row) for row in rows]

    # -- writes ---------------------------------------------------------------------------

    def create(self, **fields: Any) -> Operation:
        """Insert a new operation (state "pending" unless given) and return it.

        ``user_id`` is required; ``created_at`` may be given (tests, imports). An operation
        created in a finished state (e.g. "denied") gets ``finished_at`` = ``created_at``.
        """
        values = _check_fields(fields, allow_state=True)
        if not values.get("user_id"):
            raise TypeError("create() requires user_id")
        now = _utcnow()
        values.setdefault("state", State.PENDING.value)
        values.setdefault("created_at", now)
        values.setdefault("updated_at", values["created_at"])
        if values["state"] in _FINISHED_AT_STATES:
            values.setdefault("finished_at", values["created_at"])  # e.g. created "denied"
        values["id"] = uuid.uuid4().hex
        for name in LIST_COLUMNS:
            values.setdefault(name, [])
        for name in DICT_COLUMNS:
            values.setdefault(name, {})
        with self._connect(begin=True) as conn:
            conn.execute(operations.insert().values(**values))
        if values["state"] in TERMINAL:
            metrics.operation_finished(values["state"])
        full = {name: values.get(name) for name in COLUMNS}
        return Operation.from_row(full)

    def transition(
        self,
        op_id: str,
        from_states: str | Iterable[str],
        to_state: str,
        *,
        require: Mapping[str, Any] | None = None,
        enqueue: Iterable[Any] = (),
        **fields: Any,
    ) -> Operation | None:
        """Move op_id from one of from_states to to_state, setting fields, atomically.

        One ``UPDATE ... WHERE id = :id AND state IN (:from_states)``: the caller that changes
        the row gets the fresh Operation; None means another actor won the race, the row is in
        another state, or it does not exist. ``confirmed_at`` (-> confirmed), ``finished_at``
        (-> a terminal state other than undone) and ``undone_at`` (-> undone) are set to now
        unless given. ``require`` adds conditions (column -> value, None for IS NULL), e.g.
        ``{"run_token": token}`` for a run's final transition. Entering a LEASED state
        starts a fresh lease (lease_at = the database's clock). ``enqueue``: outbox entries
        (bot.core.delivery.outbox.Owed) the change owes to Slack, inserted in the same transaction,
        only if the change is made.
        """
        states = _states(from_states)
        to_state = _check_state(to_state)
        check_transition(states, to_state)
        if "state" in fields:
            raise TypeError("pass the new state as to_state, not as a field")
        values = _check_fields(fields, allow_state=False)
        if not _valid_id(op_id):
            return None
        now = _utcnow()
        values["state"] = to_state
        values.setdefault("updated_at", now)
        if to_state in _CONFIRMED_AT_STATES:
            values.setdefault("confirmed_at", now)
        if to_state in _FINISHED_AT_STATES:
            values.setdefault("finished_at", now)
        if to_state in _UNDONE_AT_STATES:
            values.setdefault("undone_at", now)
        if to_state in LEASED:
            values["lease_at"] = self.db_now()
        where = [operations.c.id == op_id, operations.c.state.in_(states), *_requirements(require)]
        stmt = operations.update().where(*where).values(**values)
        moved = self._update_one(stmt, op_id, enqueue)
        # An undo handing the operation back (not all removed) is not a new final state.
        handed_back = states in ([State.UNDONE], [State.UNDOING]) and to_state != State.UNDONE
        if moved is not None and to_state in TERMINAL and not handed_back:
            metrics.operation_finished(to_state)
            self._finished(moved)
        return moved

    def update(
        self,
        op_id: str,
        *,
        require: Mapping[str, Any] | None = None,
        enqueue: Iterable[Any] = (),
        **fields: Any,
    ) -> Operation | None:
        """Set non-state fields (and updated_at); returns the fresh row, None if there is none
        (or it does not meet ``require``, as in transition()). ``enqueue`` as in transition().

        Raises ValueError for ``state`` (use transition()) and TypeError for unknown fields.
        """
        stmt = _update_statement(op_id, fields, require)
        return None if stmt is None else self._update_one(stmt, op_id, enqueue)

    def save(self, op_id: str, *, run_token: str | None = None, **fields: Any) -> bool:
        """update() without reading the row back; True if the row exists.

        For hot paths that do not need the fresh row: a large operation's row holds tens of
        thousands of ids, and decoding it after every batch made a bulk add quadratic.
        With ``run_token`` it is a run's progress save: fenced (False once another run owns
        the row, or the lease was taken back) and it renews the lease.
        """
        require = None
        if run_token is not None:
            require = {"run_token": run_token}
        stmt = _update_statement(op_id, fields, require)
        if stmt is None:
            return False
        if run_token is not None:
            stmt = stmt.where(operations.c.state.in_(LEASED))
            if "lease_at" not in fields:  # a run handing its lease back passes one in the past
                stmt = stmt.values(lease_at=self.db_now())
        with self._connect(begin=True) as conn:
            return conn.execute(stmt).rowcount == 1

    def touch(self, op_id: str, run_token: str) -> bool:
        """Renew a run's lease (the heartbeat); False once the run no longer owns the row."""
        with self._connect(begin=True) as conn:
            return conn.execute(self.renewal(op_id, run_token)).rowcount == 1

    def renewal(self, op_id: str, run_token: str) -> Any:
        """The fenced lease renewal: an UPDATE that changes one row only while the run with
        `run_token` owns the operation (for touch() and the batch journal's transaction)."""
        return (
            operations.update()
            .where(
                operations.c.id == op_id,
                operations.c.run_token == run_token,
                operations.c.state.in_(LEASED),
            )
            .values(lease_at=self.db_now())
        )

    def interrupt_running(
        self, idle_for: timedelta | None = None, owed: Any = None
    ) -> list[Operation]:
        """Take back operations whose lease ran out, and return those this call moved.

        A run ('running', or 'confirmed' lingering) becomes 'interrupted'; an undo
        ('undoing') returns to the state it started from (done/partial), with what it removed
        recorded, so that Undo removes the rest. Either way the run token is cleared: the run
        presumed dead can no longer save progress or finish. With ``idle_for``, only leases
        older than that by the database's clock are taken (rows from before leases existed:
        by updated_at); without it, every one. ``owed(operation)`` returns the outbox entries
        each taken-back operation owes, queued in the same transaction.
        """
        now = _utcnow()
        where: list[Any] = []
        if idle_for is not None:
            seconds = idle_for.total_seconds()
            where.append(
                or_(
                    operations.c.lease_at < self.db_now(seconds),
                    and_(operations.c.lease_at.is_(None), operations.c.updated_at < now - idle_for),
                )
            )
        check_transition((State.RUNNING, State.CONFIRMED), State.INTERRUPTED)
        check_transition((State.UNDOING,), State.DONE)  # or back to partial: undo_from
        cleared = {"run_token": None, "updated_at": now}
        found = self._take_back(
            [operations.c.state.in_((State.RUNNING, State.CONFIRMED)), *where],
            {**cleared, "state": State.INTERRUPTED, "finished_at": now},
            owed,
        )
        found += self._take_back(
            [operations.c.state == State.UNDOING, *where],
            {**cleared, "state": func.coalesce(operations.c.undo_from, State.DONE)},
            owed,
        )
        interrupted = sum(op.state == State.INTERRUPTED for op in found)
        metrics.operation_finished(State.INTERRUPTED, interrupted)
        found.sort(key=lambda op: (op.created_at, op.id))
        return found

    def _take_back(self, where: list[Any], values: dict[str, Any], owed: Any) -> list[Operation]:
        # Both supported databases (SQLite >= 3.35, PostgreSQL) have UPDATE ... RETURNING.
        stmt = operations.update().where(*where).values(**values).returning(*operations.c)
        with self._connect(begin=True) as conn:
            rows = conn.execute(stmt).mappings().all()
            found = [Operation.from_row(row) for row in rows]
            queued = self._enqueue(conn, [e for op in found for e in (owed or _none)(op)])
        if queued:
            self.notify_enqueued()
        return found

    def db_now(self, minus_seconds: float = 0) -> Any:
        """The database's clock, as a SQL expression (see db_now())."""
        return db_now(self.engine.dialect.name, minus_seconds)

    def connect(self, *, begin: bool) -> Any:
        """A connection (in a transaction with ``begin``) for modules that add tables."""
        return self._connect(begin=begin)

    def expire_pending(self, older_than: datetime) -> int:
        """Mark 'pending' operations created before older_than as 'expired'; returns how many."""
        check_transition((State.PENDING,), State.EXPIRED)
        now = _utcnow()
        stmt = (
            operations.update()
            .where(operations.c.state == State.PENDING, operations.c.created_at < older_than)
            .values(state=State.EXPIRED, updated_at=now, finished_at=now)
        )
        with self._connect(begin=True) as conn:
            expired = conn.execute(stmt).rowcount
        metrics.operation_finished(State.EXPIRED, expired)
        return expired

    def connection(self, *, begin: bool = True) -> Any:
        """A connection (in a transaction with `begin`) for tables kept beside this one."""
        return self._connect(begin=begin)

    # -- internals ------------------------------------------------------------------------

    @contextmanager
    def _connect(self, *, begin: bool) -> Iterator[Any]:
        with self._lock or nullcontext():
            opener = self.engine.begin if begin else self.engine.connect
            with opener() as conn:
                yield conn

    def _finished(self, operation: Operation) -> None:
        for listener in list(self.finish_listeners):
            try:
                listener(operation)
            except Exception:
                log.exception("after operation %s ended: listener failed", operation.id)

    def notify_enqueued(self) -> None:
        for listener in list(self.enqueue_listeners):
            listener()

    @staticmethod
    def _enqueue(conn: Any, entries: Iterable[Any]) -> int:
        entries = list(entries)
        if not entries:
            return 0
        return insert_owed(conn, entries)

    def _update_one(self, stmt: Any, op_id: str, enqueue: Iterable[Any] = ()) -> Operation | None:
        if self._returning:
            with self._connect(begin=True) as conn:
                row = conn.execute(stmt.returning(*operations.c)).mappings().first()
                queued = self._enqueue(conn, enqueue) if row is not None else 0
            if queued:
                self.notify_enqueued()
            return Operation.from_row(row) if row is not None else None
        with self._connect(begin=True) as conn:  # pragma: no cover - no RETURNING support
            if conn.execute(stmt).rowcount != 1:  # pragma: no cover - no RETURNING support
                return None
            self._enqueue(conn, enqueue)  # pragma: no cover
            # Same transaction: the row is still locked by our UPDATE.
            row = (  # pragma: no cover
                conn.execute(select(operations).where(operations.c.id == op_id)).mappings().one()
            )
            return Operation.from_row(row)  # pragma: no cover


def _none(operation: Operation) -> list[Any]:
    return []


def _sqlite_on_connect(memory: bool) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout = 30000")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    return on_connect
