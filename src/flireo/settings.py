"""One settings object for the whole platform; every field is a ``FLIREO_*``
environment variable (e.g. ``FLIREO_DATABASE_URL``)."""

from __future__ import annotations

import socket
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLIREO_", extra="ignore")

    # --- server and store -------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default: SQLite WAL file in data_dir",
    )
    auto_migrate: bool = True
    log_level: str = "info"
    log_json: bool = False

    # --- secrets ----------------------------------------------------------
    #: keyring: "kid:base64key[,kid:base64key...]" (first = current) or one base64 key.
    #: Unset: generated into ``data_dir/secret.key`` on first start.
    secret_key: str | None = None

    # --- API limits -------------------------------------------------------
    rate_limit_per_minute: int = 100
    control_rate_limit_per_minute: int = 10
    #: failed authentications per source address per minute before 429s
    auth_failures_per_minute: int = 20
    #: counters the in-memory rate limiter holds per minute (then: one shared bucket)
    rate_limit_max_keys: int = 50_000
    max_body_bytes: int = 1_048_576

    # --- billing ----------------------------------------------------------
    price_per_minute: Decimal = Decimal("0.07")
    currency: str = "EUR"
    #: minutes credited to the organization created on first start
    initial_minutes_balance: int = 1000
    #: toll-fraud guards (services/dial_policy.py) for organizations that set none:
    #: outbound minutes per UTC day, and outbound calls at the same time
    default_daily_outbound_minutes: int = Field(default=600, ge=0)
    default_max_outbound_calls: int = Field(default=10, ge=0)

    # --- telephony (SIP/RTP) ---------------------------------------------
    #: answer and place calls over SIP (off: outbound calls fail at once, clearly)
    sip_enabled: bool = True
    #: address the SIP listeners bind to (UDP, and TCP when ``sip_tcp``)
    sip_host: str = "0.0.0.0"
    sip_port: int = 5060
    sip_tcp: bool = True
    #: SIP over TLS (RFC 3261 §26): the listener runs on ``sip_tls_port`` when a
    #: certificate and its key (PEM files) are set; calls to ``transport: tls``
    #: trunks verify the trunk's certificate against ``sip_tls_ca_file`` (default:
    #: the system's CAs) unless ``sip_tls_verify`` is off
    sip_tls_port: int = 5061
    sip_tls_cert_file: Path | None = None
    sip_tls_key_file: Path | None = None
    sip_tls_ca_file: Path | None = None
    sip_tls_verify: bool = True
    #: SRTP for calls without a trunk setting (inbound): ``optional`` answers SRTP
    #: (SDES, RFC 4568) when offered, ``mandatory`` refuses plain RTP (488),
    #: ``off`` refuses RTP/SAVP offers
    sip_srtp: Literal["off", "optional", "mandatory"] = "optional"
    #: the address put in Contact/Via/SDP (default: the bound or the outgoing address)
    sip_public_host: str | None = None
    #: RFC 3261 T1 in seconds (tests shrink it)
    sip_t1: float = 0.5
    rtp_port_min: int = 10_000
    rtp_port_max: int = 20_000
    #: flood guard: more than this many INVITEs per window from one address bans it
    sip_invite_limit: int = 16
    sip_invite_window_seconds: float = 2.0
    sip_ban_seconds: float = 300.0
    #: give up on an outbound call that is not answered in this time
    sip_ring_timeout_seconds: float = 60.0

    # --- routing between nodes ---------------------------------------------
    bus: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: this process's name among several nodes (default: the host name). Every worker
    #: sharing a database needs its own: with ``bus=redis`` a worker refuses to start
    #: while another live worker holds its id (see docs/scale-out.md)
    node_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64)
    #: ``bus=redis``: the worker's heartbeat key lives this long (refreshed every third
    #: of it); a worker silent for longer is dead and its calls end ``worker-died``
    node_heartbeat_ttl_s: float = Field(default=10.0, ge=1.0, le=300.0)
    #: SIGTERM: how long live calls may run on before they are hung up and the
    #: process exits (new calls are refused from the first moment)
    drain_timeout_s: float = Field(default=600.0, ge=0)
    #: a ``: ping`` comment on idle live-event streams (SSE) this often
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    #: a browser call (``POST /calls/web``) whose ICE/DTLS is not up by then fails
    webcall_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    #: a browser call whose audio stops this long is over (the browser is gone)
    webcall_media_timeout_seconds: float = Field(default=5.0, gt=0)

    # --- webhooks and post-call work ----------------------------------------
    #: the egress policy (security/egress.py): let user-set URLs (webhooks, tool
    #: servers, ``llm_config.base_url``...) reach private and loopback addresses, and
    #: SIP targets (trunk hosts, ``sip:`` transfers) loopback ones. Development and
    #: tests only. ``FLIREO_ALLOW_PRIVATE_WEBHOOKS`` is the older name.
    allow_private_urls: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "allow_private_urls",
            "allow_private_webhooks",
            "FLIREO_ALLOW_PRIVATE_URLS",
            "FLIREO_ALLOW_PRIVATE_WEBHOOKS",
        ),
    )
    #: multiplies the retry schedule (tests compress it, e.g. 0.001)
    webhook_retry_scale: float = 1.0
    webhook_timeout_seconds: float = 10.0
    #: the end-of-call report waits at most this long for the analysis
    analysis_max_wait_seconds: float = 60.0

    # --- call recordings (recordings/) ----------------------------------------
    #: where recordings are stored: unset = ``data_dir/recordings`` on this node;
    #: ``file:///abs/dir`` = that directory; ``s3://bucket/prefix`` = S3-compatible storage
    recordings_url: str | None = None
    #: S3-compatible endpoint (MinIO, R2, moto...; unset = AWS for the region)
    recordings_s3_endpoint: str | None = None
    recordings_s3_region: str = "us-east-1"
    #: unset: the usual AWS environment (AWS_ACCESS_KEY_ID, instance role...)
    recordings_s3_access_key_id: str | None = None
    recordings_s3_secret_access_key: str | None = None
    #: absolute base of links the server hands out (default: http://host:port)
    public_base_url: str | None = None
    #: lifetime of a signed recording link
    recording_link_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    #: HMAC key of signed links (default: derived from the secret keyring)
    recording_link_secret: str | None = None
    #: multiplies the upload retry schedule (tests compress it)
    recording_retry_scale: float = 1.0
    #: how often each node sweeps recordings past their organization's retention
    recording_sweep_interval_seconds: float = 3600.0

    # --- e-mail domains (Resend) and DNS ------------------------------------
    resend_base_url: str = "https://api.resend.com"
    #: "host" or "host:port" entries; empty = the system resolver
    dns_nameservers: list[str] = Field(default_factory=list)
    dns_timeout_seconds: float = 3.0

    # --- platform vendor keys (used when an organization has no BYOK key) ---
    openai_api_key: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_api_key: str | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    groq_api_key: str | None = None
    groq_base_url: str = "https://api.groq.com/openai/v1"
    xai_api_key: str | None = None
    xai_base_url: str = "https://api.x.ai/v1"
    xai_realtime_url: str = "wss://api.x.ai/v1/realtime"
    mistral_api_key: str | None = None
    mistral_base_url: str = "https://api.mistral.ai/v1"
    deepgram_api_key: str | None = None
    deepgram_url: str = "wss://api.deepgram.com/v1/listen"
    elevenlabs_api_key: str | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    cartesia_api_key: str | None = None
    cartesia_base_url: str = "https://api.cartesia.ai"
    resend_api_key: str | None = None

    # --- defaults for agents created without a speech/LLM config -----------
    default_stt_provider: str = "whisper"
    default_stt_model: str = "tiny.en"
    default_language: str = "en"
    default_llm_provider: str = "openai"
    default_llm_model: str = "gpt-4o-mini"
    default_tts_provider: str = "piper"
    default_tts_voice: str = "joe-us"

    @property
    def allow_private_webhooks(self) -> bool:
        """The older name of :attr:`allow_private_urls`."""
        return self.allow_private_urls

    @allow_private_webhooks.setter
    def allow_private_webhooks(self, value: bool) -> None:
        self.allow_private_urls = value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'flireo.db').as_posix()}"

    @property
    def resolved_public_base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
