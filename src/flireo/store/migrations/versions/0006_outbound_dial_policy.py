"""organization outbound dial policy (toll fraud)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flireo.store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outbound_countries", flireo.store.types.Json, nullable=True))
        batch_op.add_column(
            sa.Column(
                "allow_premium_destinations",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("daily_outbound_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_outbound_calls", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("max_outbound_calls")
        batch_op.drop_column("daily_outbound_minutes")
        batch_op.drop_column("allow_premium_destinations")
        batch_op.drop_column("outbound_countries")
