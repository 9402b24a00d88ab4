"""Slack events seen (each event_id handled once, retries included); outbox by user (App Home).

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_slack_events_seen_at", "slack_events", ["seen_at"])
    # The App Home's publishes are looked up by user (one queued per user, paced).
    op.create_index("ix_outbox_home", "outbox", ["kind", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_home", table_name="outbox")
    op.drop_index("ix_slack_events_seen_at", table_name="slack_events")
    op.drop_table("slack_events")
