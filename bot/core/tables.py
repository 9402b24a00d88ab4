"""Every table (operations, journal, outbox, approvals) on one `metadata` (docs/SPEC.md §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = [
    "UTCDateTime",
    "approval_requests",
    "approvals",
    "batches",
    "metadata",
    "operations",
    "outbox",
    "slack_events",
    "workflow_steps",
]


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite has no time zones: store naive UTC so that strings compare in order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Migrations compare this metadata whole: every table of the bot is on it.
metadata = MetaData()

operations = Table(
    "operations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("team_id", String(64), nullable=True),
    Column("channel_id", String(64), nullable=True),
    Column("user_id", String(64), nullable=False),
    Column("library_id", String(64), nullable=True),
    Column("library_name", Text, nullable=True),
    Column("requested_ids", JSON, nullable=False, default=list),
    Column("new_ids", JSON, nullable=False, default=list),
    Column("present_ids", JSON, nullable=False, default=list),
    Column("missing_ids", JSON, nullable=False, default=list),
    Column("added_ids", JSON, nullable=False, default=list),
    Column("failed_ids", JSON, nullable=False, default=list),
    Column("removed_ids", JSON, nullable=False, default=list),
    Column("outcome", JSON, nullable=False, default=dict),
    Column("errors", JSON, nullable=False, default=list),
    Column("response_url", Text, nullable=True),
    Column("summary_channel", String(64), nullable=True),
    Column("summary_ts", String(32), nullable=True),
    Column("notify_channel", String(64), nullable=True),
    Column("notify_ts", String(32), nullable=True),
    Column("confirmed_by", String(64), nullable=True),
    Column("undone_by", String(64), nullable=True),
    Column("rejected_by", String(64), nullable=True),
    Column("denial_reason", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("undone_at", UTCDateTime, nullable=True),
    # Fencing (docs/SPEC.md §5): the token of the run (or undo) that owns the row, its lease (set
    # from the database's clock only), and the state an undo returns to if it is cut off.
    Column("run_token", String(32), nullable=True),
    Column("lease_at", UTCDateTime, nullable=True),
    Column("undo_from", String(16), nullable=True),
    # Asset id -> its Uplynk title (desc), from the preview's look-up (docs/SPEC.md §3.3).
    Column("asset_titles", JSON, nullable=True),
    # A scheduled add (docs/SPEC.md §15): when it runs, the requester's zone it was read in
    # (for messages), and when its run was claimed (the database's clock; lateness).
    Column("run_at", UTCDateTime, nullable=True),
    Column("run_zone", String(64), nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    # The library's facts the summary shows, from the preview's look-up: a queued summary is
    # rendered from the database, never from Uplynk (docs/SPEC.md §16).
    Column("library_facts", JSON, nullable=True),
    # When the operation's summary was queued (a run never queues a second one).
    Column("summary_queued_at", UTCDateTime, nullable=True),
    # History (per user, per library, everyone's), newest first: each query one index range in
    # its ORDER BY (created_at, id); App Home's waiting approvals and the sweeps by state.
    Index("ix_operations_user_time", "user_id", "created_at", "id"),
    Index("ix_operations_library_time", "library_id", "created_at", "id"),
    Index("ix_operations_time", "created_at", "id"),
    Index("ix_operations_state_time", "state", "created_at"),
    Index("ix_operations_state_run_at", "state", "run_at"),
)

#: The batch journal (bot/core/journal.py): each add/remove batch, recorded before it is sent.
batches = Table(
    "operation_batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(32), nullable=False, index=True),
    Column("run_token", String(32), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("number", Integer, nullable=False),
    Column("asset_ids", JSON, nullable=False),
    Column("state", String(8), nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # The prune takes old batches in started_at order.
    Index("ix_operation_batches_started", "started_at"),
)

#: The outbox (docs/SPEC.md §12, bot/core/delivery/outbox.py): Slack calls owed.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(32), nullable=True),
    # Entries of one lane are delivered one at a time, in id order (one operation's messages).
    Column("lane", String(64), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("channel", String(64), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("template", String(32), nullable=False),
    Column("args", JSON, nullable=False),
    Column("thread", String(64), nullable=True),
    Column("key", String(64), nullable=True),
    Column("target", String(64), nullable=True),
    Column("fallback_url", Text, nullable=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lost", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("lease_token", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("result_channel", String(64), nullable=True),
    Column("result_ts", String(32), nullable=True),
    Column("error", Text, nullable=True),
    # Set when the holder of the claim starts its Slack call: a claim taken over after that
    # may have posted (its answer is lost); one taken over before it had posted nothing.
    Column("calling_at", UTCDateTime, nullable=True),
    # The due entries in delivery order (due_at, id): the claim reads the first ones only.
    Index("ix_outbox_state_due", "state", "due_at", "id"),
    # The prune takes finished entries in updated_at order.
    Index("ix_outbox_state_updated", "state", "updated_at"),
    Index("ix_outbox_lane", "lane", "id"),
    Index("ix_outbox_operation", "operation_id"),
    Index("ix_outbox_home", "kind", "user_id"),  # a user's Home publishes (bot.core.home)
)


# One row per operation that asked for approval: what the approvers' messages need.
approval_requests = Table(
    "approval_requests",
    metadata,
    Column("operation_id", String(32), primary_key=True),
    Column("titles", JSON, nullable=False, default=dict),  # asset id -> Uplynk title (shown ones)
    # No longer written: the outbox records where each copy of the request was posted, and the
    # requester is reached through operations.response_url. Kept for the migration's schema.
    Column("messages", JSON, nullable=False, default=list),
    Column("requester_url", Text, nullable=True),
)

# One row per (operation, approver): the primary key makes a second approval impossible.
approvals = Table(
    "approvals",
    metadata,
    Column("operation_id", String(32), nullable=False),
    Column("approver", String(64), nullable=False),
    Column("approved_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("operation_id", "approver", name="pk_approvals"),
)

# One row per Slack event handled (docs/SPEC.md §14): the primary key makes a second delivery of
# one event_id (Slack's retry of a delivery it thinks failed) a no-op. Pruned after a day.
slack_events = Table(
    "slack_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False, index=True),
)

# One row per Workflow Builder step execution (docs/SPEC.md §13): the primary key is the
# compare-and-set that makes one function_execution_id one operation, however often Slack
# delivers the event. `token` (the execution's bot_access_token) is cleared when the step is
# completed; `state`: open -> finished (completion owed, in the outbox) -> completed.
workflow_steps = Table(
    "workflow_steps",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("operation_id", String(32), nullable=True, index=True),
    Column("requester", String(64), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("token", Text, nullable=True),
    Column("state", String(16), nullable=False, index=True),
    Column("success", Integer, nullable=True),  # 1: completeSuccess, 0: completeError
    Column("outputs", JSON, nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
)
