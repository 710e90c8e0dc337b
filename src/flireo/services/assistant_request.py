"""The ``assistant-request`` webhook (webhooks.md §6): before an inbound call is
answered, ask the customer's server for per-call overrides (5 s).

Replies: ``{}`` (use the stored agent), ``{"assistant": {...}}`` (overrides:
``firstMessage``, ``stt_config``, ``llm_config``, ``tts_config``,
``analysisPlan``, ``recordingEnabled``), ``{"maxDurationSeconds": n}`` and ``{"error": "..."}``
(reject the call; the text is spoken to the caller). A timeout, an error or an
unusable reply falls back to the stored agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from flireo.domain.agents import AnalysisPlan, LLMConfig, STTConfig, TTSConfig
from flireo.store.tables import Agent, Call
from flireo.webhooks import outbox, payloads
from flireo.webhooks.sync import ASSISTANT_REQUEST_TIMEOUT, SyncReply, post_sync_webhook

log = structlog.get_logger(__name__)


class ArtifactPlan(BaseModel):
    model_config = ConfigDict(extra="ignore")
    recording_enabled: bool | None = Field(
        default=None, validation_alias=AliasChoices("recordingEnabled", "recording_enabled")
    )


class AssistantOverride(BaseModel):
    """``assistant`` in the reply; unknown keys are ignored (Vapi sends more)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    first_message: str | None = Field(
        default=None, validation_alias=AliasChoices("firstMessage", "first_message")
    )
    stt_config: STTConfig | None = Field(
        default=None, validation_alias=AliasChoices("stt_config", "sttConfig")
    )
    llm_config: LLMConfig | None = Field(
        default=None, validation_alias=AliasChoices("llm_config", "llmConfig")
    )
    tts_config: TTSConfig | None = Field(
        default=None, validation_alias=AliasChoices("tts_config", "ttsConfig")
    )
    analysis_plan: AnalysisPlan | None = Field(
        default=None, validation_alias=AliasChoices("analysisPlan", "analysis_plan")
    )
    max_duration_seconds: int | None = Field(
        default=None,
        ge=10,
        le=43_200,
        validation_alias=AliasChoices("maxDurationSeconds", "max_duration_seconds"),
    )
    #: false: this call is not recorded (Vapi's ``artifactPlan.recordingEnabled`` too)
    recording_enabled: bool | None = Field(
        default=None, validation_alias=AliasChoices("recordingEnabled", "recording_enabled")
    )
    artifact_plan: ArtifactPlan | None = Field(
        default=None, validation_alias=AliasChoices("artifactPlan", "artifact_plan")
    )


class AssistantReply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    assistant: AssistantOverride | None = None
    max_duration_seconds: int | None = Field(
        default=None,
        ge=10,
        le=43_200,
        validation_alias=AliasChoices("maxDurationSeconds", "max_duration_seconds"),
    )
    error: str | None = None


@dataclass(frozen=True)
class AssistantDecision:
    #: the caller is told this and the call is rejected
    reject_message: str | None = None
    #: stored on ``Call.overrides``; read by the session builder
    overrides: dict[str, Any] = field(default_factory=dict)
    #: why the stored agent is used as is (for logs): timeout, bad reply...
    fallback_reason: str | None = None


def decide(reply: SyncReply) -> AssistantDecision:
    """Pure: what an assistant-request reply means for the call."""
    if not reply.ok:
        return AssistantDecision(fallback_reason=reply.error or "no reply")
    if reply.body in (None, {}):
        return AssistantDecision()
    if not isinstance(reply.body, dict):
        return AssistantDecision(fallback_reason="reply is not a JSON object")
    try:
        parsed = AssistantReply.model_validate(reply.body)
    except ValidationError as exc:
        return AssistantDecision(fallback_reason=f"unusable reply: {exc.errors()[0]['msg']}")
    if parsed.error:
        return AssistantDecision(reject_message=parsed.error)
    overrides: dict[str, Any] = {}
    if parsed.assistant is not None:
        a = parsed.assistant
        if a.first_message is not None:
            overrides["firstMessage"] = a.first_message
        for key, value in (
            ("stt_config", a.stt_config),
            ("llm_config", a.llm_config),
            ("tts_config", a.tts_config),
            ("analysisPlan", a.analysis_plan),
        ):
            if value is not None:
                overrides[key] = value.model_dump(by_alias=True, exclude_none=True, mode="json")
        if a.max_duration_seconds is not None:
            overrides["maxDurationSeconds"] = a.max_duration_seconds
        recording = a.recording_enabled
        if recording is None and a.artifact_plan is not None:
            recording = a.artifact_plan.recording_enabled
        if recording is not None:
            overrides["recordingEnabled"] = recording
    if parsed.max_duration_seconds is not None:
        overrides["maxDurationSeconds"] = parsed.max_duration_seconds
    return AssistantDecision(overrides=overrides)


async def ask_assistant(
    http: httpx.AsyncClient,
    call: Call,
    agent: Agent,
    *,
    number_name: str | None,
    secret: str | None,
    now: datetime,
    allow_private: bool,
    deadline_seconds: float = ASSISTANT_REQUEST_TIMEOUT,
) -> AssistantDecision:
    """Send the webhook when the agent takes it; otherwise use the agent as stored."""
    if not outbox.wants(agent, "assistant-request"):
        return AssistantDecision()
    assert agent.webhook_url is not None
    body = payloads.envelope(
        "assistant-request", call, number_name=number_name, now=now, call_status="ringing"
    )
    reply = await post_sync_webhook(
        http,
        url=agent.webhook_url,
        event_type="assistant-request",
        payload=body,
        secret=secret,
        deadline_seconds=deadline_seconds,
        allow_private=allow_private,
        now=now.timestamp(),
    )
    decision = decide(reply)
    if decision.fallback_reason:
        log.info(
            "assistant-request fell back to the stored agent",
            reason=decision.fallback_reason,
            call_id=call.id,
        )
    return decision
