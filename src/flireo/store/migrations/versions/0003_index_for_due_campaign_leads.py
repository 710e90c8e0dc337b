"""index for due campaign leads

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 05:57:28.927810
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_leads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_leads_due", ["campaign_id", "status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_due")
