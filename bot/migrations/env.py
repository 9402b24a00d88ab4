"""Alembic environment: runs migrations on the connection bot.core.schema hands over."""

from alembic import context

from bot.core.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through bot.core.schema
    raise RuntimeError("run migrations through `python -m bot migrate` (bot.core.schema)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
