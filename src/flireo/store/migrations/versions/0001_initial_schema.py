"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 03:52:45.771671
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flireo.store.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("minutes_balance", sa.Integer(), nullable=False),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=True),
        sa.Column("reserved_inbound_calls", sa.Integer(), nullable=False),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "analysis_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("user_prompt", sa.Text(), nullable=True),
        sa.Column("schema", flireo.store.types.Json, nullable=False),
        sa.Column("messages", flireo.store.types.Json, nullable=True),
        sa.Column("min_messages_threshold", sa.Integer(), nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_analysis_templates_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_templates")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_analysis_templates_org_id")),
    )
    with op.batch_alter_table("analysis_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analysis_templates_org_id"), ["org_id"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        "domains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("domain_name", sa.String(length=255), nullable=False),
        sa.Column("resend_domain_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=True),
        sa.Column("records", flireo.store.types.Json, nullable=False),
        sa.Column("dns_checks", flireo.store.types.Json, nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_domains_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint("org_id", name=op.f("uq_domains_org_id")),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("masked", sa.String(length=32), nullable=False),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_secrets_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
    )
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secrets_org_id"), ["org_id"], unique=False)

    op.create_table(
        "tool_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tool_type", sa.String(length=32), nullable=False),
        sa.Column("tool_config", flireo.store.types.Json, nullable=False),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_tool_templates_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_templates")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_tool_templates_org_id")),
    )
    with op.batch_alter_table("tool_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tool_templates_org_id"), ["org_id"], unique=False)

    op.create_table(
        "usage_logs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("call_id", sa.String(length=80), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("number_id", sa.String(length=36), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("phone_number", sa.String(length=64), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("minutes_used", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("stt_seconds", sa.Float(), nullable=False),
        sa.Column("llm_prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("llm_completion_tokens", sa.Integer(), nullable=False),
        sa.Column("tts_characters", sa.Integer(), nullable=False),
        sa.Column("vendor_usage", flireo.store.types.Json, nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_usage_logs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_logs")),
        sa.UniqueConstraint("call_id", name=op.f("uq_usage_logs_call_id")),
    )
    with op.batch_alter_table("usage_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_logs_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_usage_logs_number_id"), ["number_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_usage_logs_org_id"), ["org_id"], unique=False)
        batch_op.create_index("ix_usage_org_created", ["org_id", "created_at"], unique=False)

    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("business_name", sa.String(length=200), nullable=True),
        sa.Column("notification_email", sa.String(length=320), nullable=True),
        sa.Column("first_message", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("webhook_secret_id", sa.String(length=36), nullable=True),
        sa.Column("webhook_events", flireo.store.types.Json, nullable=False),
        sa.Column("stt_config", flireo.store.types.Json, nullable=False),
        sa.Column("llm_config", flireo.store.types.Json, nullable=False),
        sa.Column("tts_config", flireo.store.types.Json, nullable=False),
        sa.Column("analysis_plan", flireo.store.types.Json, nullable=True),
        sa.Column("voicemail_detection", sa.Boolean(), nullable=False),
        sa.Column("voicemail_message", sa.Text(), nullable=True),
        sa.Column("autonomous_silence_handling", sa.Boolean(), nullable=False),
        sa.Column("max_duration_seconds", sa.Integer(), nullable=True),
        sa.Column("silence_timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("gdpr_mode", sa.Boolean(), nullable=False),
        sa.Column("conversation", flireo.store.types.Json, nullable=False),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_agents_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_secret_id"],
            ["secrets.id"],
            name=op.f("fk_agents_webhook_secret_id_secrets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_org_id"), ["org_id"], unique=False)

    op.create_table(
        "byok_keys",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_byok_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name=op.f("fk_byok_keys_secret_id_secrets")
        ),
        sa.PrimaryKeyConstraint("org_id", "provider", name=op.f("pk_byok_keys")),
    )
    op.create_table(
        "sip_trunks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("password_secret_id", sa.String(length=36), nullable=True),
        sa.Column("allowed_ips", flireo.store.types.Json, nullable=False),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_sip_trunks_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["password_secret_id"],
            ["secrets.id"],
            name=op.f("fk_sip_trunks_password_secret_id_secrets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_trunks")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_sip_trunks_org_id")),
    )
    with op.batch_alter_table("sip_trunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_trunks_org_id"), ["org_id"], unique=False)

    op.create_table(
        "numbers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("transfer_trunk_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_numbers_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_numbers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transfer_trunk_id"],
            ["sip_trunks.id"],
            name=op.f("fk_numbers_transfer_trunk_id_sip_trunks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_numbers")),
        sa.UniqueConstraint("phone_number", name=op.f("uq_numbers_phone_number")),
    )
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_numbers_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_numbers_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_numbers_transfer_trunk_id"), ["transfer_trunk_id"], unique=False
        )

    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("number_id", sa.String(length=36), nullable=True),
        sa.Column("campaign_id", sa.String(length=36), nullable=True),
        sa.Column("lead_id", sa.String(length=36), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("caller_phone", sa.String(length=64), nullable=True),
        sa.Column("assistant_phone", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ended_reason", sa.String(length=96), nullable=True),
        sa.Column("started_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("analysis_result", flireo.store.types.Json, nullable=True),
        sa.Column("messages", flireo.store.types.Json, nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("metrics", flireo.store.types.Json, nullable=True),
        sa.Column("cost", sa.Numeric(precision=12, scale=4), nullable=True),
        sa.Column("agent_name", sa.String(length=200), nullable=True),
        sa.Column("business_name", sa.String(length=200), nullable=True),
        sa.Column("room_name", sa.String(length=80), nullable=True),
        sa.Column("first_message", sa.Text(), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("overrides", flireo.store.types.Json, nullable=True),
        sa.Column("owner_node", sa.String(length=64), nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_calls_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["numbers.id"],
            name=op.f("fk_calls_number_id_numbers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_calls_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index("ix_calls_org_created", ["org_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_org_id"), ["org_id"], unique=False)
        batch_op.create_index("ix_calls_org_status", ["org_id", "status"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("number_id", sa.String(length=36), nullable=True),
        sa.Column("system_message_template", sa.Text(), nullable=True),
        sa.Column("schedule_start_time", sa.String(length=8), nullable=False),
        sa.Column("schedule_end_time", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=False),
        sa.Column("calls_per_second", sa.Float(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_delay_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_campaigns_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["numbers.id"],
            name=op.f("fk_campaigns_number_id_numbers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_campaigns_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_org_id"), ["org_id"], unique=False)

    op.create_table(
        "campaign_leads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("variables", flireo.store.types.Json, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("missing_variables", flireo.store.types.Json, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("call_id", sa.String(length=80), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", flireo.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flireo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_leads_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_campaign_leads_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_leads")),
        sa.UniqueConstraint(
            "campaign_id", "phone_number", name=op.f("uq_campaign_leads_campaign_id")
        ),
    )
    with op.batch_alter_table("campaign_leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_leads_org_id"), ["org_id"], unique=False)
        batch_op.create_index("ix_leads_campaign_status", ["campaign_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaign_leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_campaign_status")
        batch_op.drop_index(batch_op.f("ix_campaign_leads_org_id"))

    op.drop_table("campaign_leads")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_org_id"))

    op.drop_table("campaigns")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_org_status")
        batch_op.drop_index(batch_op.f("ix_calls_org_id"))
        batch_op.drop_index("ix_calls_org_created")
        batch_op.drop_index(batch_op.f("ix_calls_lead_id"))
        batch_op.drop_index(batch_op.f("ix_calls_campaign_id"))

    op.drop_table("calls")
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_numbers_transfer_trunk_id"))
        batch_op.drop_index(batch_op.f("ix_numbers_org_id"))
        batch_op.drop_index(batch_op.f("ix_numbers_agent_id"))

    op.drop_table("numbers")
    with op.batch_alter_table("sip_trunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_trunks_org_id"))

    op.drop_table("sip_trunks")
    op.drop_table("byok_keys")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_org_id"))

    op.drop_table("agents")
    with op.batch_alter_table("usage_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_org_created")
        batch_op.drop_index(batch_op.f("ix_usage_logs_org_id"))
        batch_op.drop_index(batch_op.f("ix_usage_logs_number_id"))
        batch_op.drop_index(batch_op.f("ix_usage_logs_agent_id"))

    op.drop_table("usage_logs")
    with op.batch_alter_table("tool_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tool_templates_org_id"))

    op.drop_table("tool_templates")
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secrets_org_id"))

    op.drop_table("secrets")
    op.drop_table("domains")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_org_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("analysis_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analysis_templates_org_id"))

    op.drop_table("analysis_templates")
    op.drop_table("organizations")
