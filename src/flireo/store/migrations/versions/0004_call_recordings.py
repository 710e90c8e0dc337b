"""call recordings

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 16:23:41.806444
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flireo.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recording_uploads",
        sa.Column("call_id", sa.String(length=80), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("stereo_path", sa.String(length=1024), nullable=False),
        sa.Column("mono_path", sa.String(length=1024), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("recorded_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_recording_uploads_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_recording_uploads")),
    )
    with op.batch_alter_table("recording_uploads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recording_uploads_due", ["node_id", "status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_recording_uploads_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recording_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("recording_format", sa.String(length=8), server_default="wav", nullable=False)
        )

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("recording_format", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("recording_key", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("recording_mono_key", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("recording_duration_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("recording_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("recorded_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_calls_recorded_at"), ["recorded_at"], unique=False)

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recording_retention_days", sa.Integer(), server_default="30", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("recording_retention_days")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_recorded_at"))
        batch_op.drop_column("recorded_at")
        batch_op.drop_column("recording_error")
        batch_op.drop_column("recording_duration_seconds")
        batch_op.drop_column("recording_mono_key")
        batch_op.drop_column("recording_key")
        batch_op.drop_column("recording_format")
        batch_op.drop_column("recording_status")

    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("recording_format")
        batch_op.drop_column("recording_enabled")

    with op.batch_alter_table("recording_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_uploads_org_id"))
        batch_op.drop_index("ix_recording_uploads_due")

    op.drop_table("recording_uploads")
