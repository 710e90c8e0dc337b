"""SQLAlchemy tables. Every customer row carries ``org_id``; repositories
filter by it on every query, so one organization never sees another's rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false as sa_false
from sqlalchemy.sql.expression import true as sa_true

from flireo.clock import utcnow
from flireo.store.types import Json, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: Json,
        list[Any]: Json,
    }


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def org_fk() -> Mapped[str]:
    return mapped_column(String(36), ForeignKey("organizations.id", ondelete="CASCADE"), index=True)


class Organization(Timestamps, Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    minutes_balance: Mapped[int] = mapped_column(Integer, default=0)
    #: concurrent calls the organization may hold (None = unlimited)
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer)
    #: capacity campaigns must leave free for inbound calls
    reserved_inbound_calls: Mapped[int] = mapped_column(Integer, default=0)
    #: days a call recording is kept (0 = forever); see recordings/retention.py
    recording_retention_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    #: outbound dial policy (services/dial_policy.py): ISO countries it may call
    #: (None = the countries of its own numbers), premium/shared-cost allowed,
    #: outbound minutes per UTC day and concurrent outbound calls (None = the
    #: server defaults, FLIREO_DEFAULT_DAILY_OUTBOUND_MINUTES / _MAX_OUTBOUND_CALLS)
    outbound_countries: Mapped[list[Any] | None] = mapped_column(nullable=True)
    allow_premium_destinations: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false()
    )
    daily_outbound_minutes: Mapped[int | None] = mapped_column(Integer)
    max_outbound_calls: Mapped[int | None] = mapped_column(Integer)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200), default="default")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Secret(Base):
    """The vault: every secret of an organization, encrypted (see security/secrets.py)."""

    __tablename__ = "secrets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    purpose: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: display form (e.g. ``sk-...abcd``); never the secret itself
    masked: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ByokKey(Base):
    __tablename__ = "byok_keys"
    org_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_id: Mapped[str] = mapped_column(String(36), ForeignKey("secrets.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Agent(Timestamps, Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    business_name: Mapped[str | None] = mapped_column(String(200))
    notification_email: Mapped[str | None] = mapped_column(String(320))
    first_message: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("secrets.id", ondelete="SET NULL")
    )
    webhook_events: Mapped[list[Any]] = mapped_column(default=list)
    stt_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    llm_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tts_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    analysis_plan: Mapped[dict[str, Any] | None]
    voicemail_detection: Mapped[bool] = mapped_column(Boolean, default=False)
    voicemail_message: Mapped[str | None] = mapped_column(Text)
    autonomous_silence_handling: Mapped[bool] = mapped_column(Boolean, default=False)
    max_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    silence_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    gdpr_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    #: conversation tuning (endpointing, barge-in, fillers): see domain/agents.py
    conversation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: set when the webhook endpoint answered 410 Gone: no more deliveries
    webhook_disabled_at: Mapped[datetime | None]
    webhook_disabled_reason: Mapped[str | None] = mapped_column(String(200))
    #: call recording (stereo: caller left, agent right) and its container
    recording_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    recording_format: Mapped[str] = mapped_column(String(8), default="wav", server_default="wav")


class ToolTemplate(Timestamps, Base):
    __tablename__ = "tool_templates"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    tool_type: Mapped[str] = mapped_column(String(32))
    tool_config: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AnalysisTemplate(Timestamps, Base):
    __tablename__ = "analysis_templates"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    user_prompt: Mapped[str | None] = mapped_column(Text)
    schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    messages: Mapped[list[Any] | None]
    min_messages_threshold: Mapped[int | None] = mapped_column(Integer)


class SipTrunk(Base):
    __tablename__ = "sip_trunks"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    #: SRTP towards this trunk: off (plain RTP), optional (answer SRTP when
    #: offered), mandatory (offer RTP/SAVP only, refuse plain RTP)
    srtp: Mapped[str] = mapped_column(String(16), default="optional", server_default="optional")
    username: Mapped[str | None] = mapped_column(String(200))
    password_secret_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("secrets.id", ondelete="SET NULL")
    )
    #: source addresses/networks allowed to send INVITEs for this trunk's numbers
    allowed_ips: Mapped[list[Any]] = mapped_column(default=list)
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PhoneNumber(Timestamps, Base):
    __tablename__ = "numbers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    phone_number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    agent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    transfer_trunk_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("sip_trunks.id", ondelete="SET NULL"), index=True
    )


class Call(Timestamps, Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_org_created", "org_id", "created_at"),
        Index("ix_calls_org_status", "org_id", "status"),
    )
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    org_id: Mapped[str] = org_fk()
    agent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("agents.id", ondelete="SET NULL")
    )
    number_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("numbers.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[str | None] = mapped_column(String(36), index=True)
    lead_id: Mapped[str | None] = mapped_column(String(36), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    caller_phone: Mapped[str | None] = mapped_column(String(64))
    assistant_phone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    ended_reason: Mapped[str | None] = mapped_column(String(96))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text)
    analysis_result: Mapped[dict[str, Any] | None]
    messages: Mapped[list[Any] | None]
    transcript: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None]
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    agent_name: Mapped[str | None] = mapped_column(String(200))
    business_name: Mapped[str | None] = mapped_column(String(200))
    room_name: Mapped[str | None] = mapped_column(String(80))
    first_message: Mapped[str | None] = mapped_column(Text)
    context: Mapped[str | None] = mapped_column(Text)
    #: per-call overrides (assistant-request reply, campaign variables)
    overrides: Mapped[dict[str, Any] | None]
    #: node that owns the live session (scale-out routing of control commands)
    owner_node: Mapped[str | None] = mapped_column(String(64))
    #: post-call analysis: none | pending | done | failed | skipped
    analysis_status: Mapped[str | None] = mapped_column(String(16))
    analysis_error: Mapped[str | None] = mapped_column(Text)
    #: recording: none (not recorded) | pending (upload queued) | stored | deleted
    recording_status: Mapped[str | None] = mapped_column(String(16))
    recording_format: Mapped[str | None] = mapped_column(String(8))
    #: storage keys (see recordings/storage.py) of the stereo file and the mono mix
    recording_key: Mapped[str | None] = mapped_column(String(512))
    recording_mono_key: Mapped[str | None] = mapped_column(String(512))
    recording_duration_seconds: Mapped[float | None] = mapped_column(Float)
    recording_error: Mapped[str | None] = mapped_column(Text)
    #: when the recording was made (the retention clock starts here)
    recorded_at: Mapped[datetime | None] = mapped_column(index=True)


class UsageLog(Base):
    __tablename__ = "usage_logs"
    __table_args__ = (Index("ix_usage_org_created", "org_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    call_id: Mapped[str] = mapped_column(String(80), unique=True)
    agent_id: Mapped[str | None] = mapped_column(String(36), index=True)
    number_id: Mapped[str | None] = mapped_column(String(36), index=True)
    direction: Mapped[str | None] = mapped_column(String(16))
    phone_number: Mapped[str | None] = mapped_column(String(64))
    duration_seconds: Mapped[int] = mapped_column(Integer)
    minutes_used: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    stt_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    llm_prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    llm_completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    tts_characters: Mapped[int] = mapped_column(Integer, default=0)
    vendor_usage: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Domain(Timestamps, Base):
    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    domain_name: Mapped[str] = mapped_column(String(255))
    resend_domain_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(32))
    records: Mapped[list[Any]] = mapped_column(default=list)
    dns_checks: Mapped[list[Any] | None]


class Campaign(Timestamps, Base):
    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("agents.id", ondelete="SET NULL")
    )
    number_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("numbers.id", ondelete="SET NULL")
    )
    system_message_template: Mapped[str | None] = mapped_column(Text)
    schedule_start_time: Mapped[str] = mapped_column(String(8), default="09:00:00")
    schedule_end_time: Mapped[str] = mapped_column(String(8), default="17:00:00")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    max_concurrent_calls: Mapped[int] = mapped_column(Integer, default=5)
    calls_per_second: Mapped[float] = mapped_column(Float, default=1.0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_delay_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    #: False: the campaign's calls are not recorded (whatever the agent says)
    recording_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())


class CampaignLead(Base):
    __tablename__ = "campaign_leads"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_number"),
        Index("ix_leads_campaign_status", "campaign_id", "status"),
        Index("ix_leads_due", "campaign_id", "status", "next_attempt_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    org_id: Mapped[str] = org_fk()
    phone_number: Mapped[str] = mapped_column(String(32))
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64))
    missing_variables: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(32))
    call_id: Mapped[str | None] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """The outbox: an asynchronous webhook, written in the same transaction as the
    state change it reports, delivered at least once, in ``seq`` order per call."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("call_id", "seq"),
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
    )
    #: also the Standard Webhooks ``webhook-id``: stable across retries
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = org_fk()
    call_id: Mapped[str] = mapped_column(String(80), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))
    #: the body, rendered once before the first attempt and then frozen
    payload: Mapped[dict[str, Any] | None]
    #: pending | held | delivered | failed | disabled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: a held event (an end-of-call report waiting for analysis) is released at this time
    hold_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One delivery attempt of an outbox event (the delivery log)."""

    __tablename__ = "webhook_attempts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class AnalysisJob(Base):
    """Post-call analysis to run (survives restarts; retried with backoff)."""

    __tablename__ = "analysis_jobs"
    __table_args__ = (Index("ix_analysis_jobs_due", "status", "next_attempt_at"),)
    call_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    org_id: Mapped[str] = org_fk()
    #: pending | running | done | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DoNotCall(Base):
    """An organization's suppression list: these numbers are never dialed."""

    __tablename__ = "do_not_call"
    org_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    phone_number: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    #: api | caller-request | agent
    source: Mapped[str] = mapped_column(String(32), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordingUpload(Base):
    """A finished recording whose upload to storage failed: retried from this durable
    row (lease pattern of the webhook outbox). The files wait in the spool directory of
    the node that took the call, so only that node (``node_id``) claims the row."""

    __tablename__ = "recording_uploads"
    __table_args__ = (Index("ix_recording_uploads_due", "node_id", "status", "next_attempt_at"),)
    call_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    org_id: Mapped[str] = org_fk()
    node_id: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))
    stereo_path: Mapped[str] = mapped_column(String(1024))
    mono_path: Mapped[str] = mapped_column(String(1024))
    duration_seconds: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: pending | done | failed (given up: files kept, see the error)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
