"""Asset titles: each operation keeps the Uplynk titles of its assets, shown beside their ids.

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: operations from before this revision have no titles (their ids are shown).
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("asset_titles", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("asset_titles")
