"""Agents and their pipeline configuration (schemas.md §1, §3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from flireo.domain.common import (
    HTTP_URL_PATTERN,
    JsonSchemaDoc,
    JsonTypes,
    OutModel,
    Timestamp,
    WireModel,
)
from flireo.domain.tools import Tool, default_tool_type
from flireo.webhooks.ssrf import UnsafeUrl, parse_target

WebhookEvent = Literal[
    "assistant-request", "tool-calls", "status-update", "end-of-call-report", "transfer-update"
]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "assistant-request",
    "tool-calls",
    "status-update",
    "end-of-call-report",
    "transfer-update",
)

SttProvider = Literal["deepgram", "openai", "whisper", "pocketsphinx"]
LlmProvider = Literal[
    "openai",
    "anthropic",
    "groq",
    "xai",
    "mistral",
    "xai_realtime",
    "ollama",
    "openai-compatible",
]
#: ``11labs`` (Vapi's name) and ``eleven_labs`` are stored as ``elevenlabs``
TtsProvider = Literal["openai", "elevenlabs", "cartesia", "piper", "11labs", "eleven_labs"]
_TTS_ALIASES = {"11labs": "elevenlabs", "eleven_labs": "elevenlabs"}
#: container of a call recording: WAV (s16le 16 kHz) or Opus in Ogg
RecordingFormat = Literal["wav", "ogg"]


#: option names (lower case, without ``_``/``-``) that carry a credential
_SECRET_OPTIONS = frozenset(
    {
        "apikey",
        "key",
        "secret",
        "secretkey",
        "clientsecret",
        "token",
        "accesstoken",
        "authtoken",
        "bearertoken",
        "authorization",
        "password",
        "xapikey",
        "credentials",
    }
)


_SECRET_SUFFIXES = ("apikey", "secret", "secretkey", "token", "password")


def secret_options(value: Any, path: str = "") -> list[str]:
    """Paths of credential-looking options inside a vendor config (nested too)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            name = str(key).lower().replace("_", "").replace("-", "")
            if name in _SECRET_OPTIONS or name.endswith(_SECRET_SUFFIXES):
                found.append(here)
            else:
                found.extend(secret_options(item, here))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                found.extend(secret_options(item, f"{path}.{index}"))
    return found


class _VendorConfig(JsonTypes):
    """Pipeline configs keep vendor-specific extra options (e.g. ``stability``),
    never credentials: those are kept encrypted through ``POST /byok``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            options = {k: v for k, v in data.items() if k not in ("tools", "messages")}
            found = secret_options(options)
            if found:
                provider = data.get("provider")
                raise ValueError(
                    f"{found[0]!r} looks like a credential: vendor configs are stored and "
                    "returned as they are, so keys are not accepted here; store the key "
                    "encrypted with POST /byok"
                    + (f' ({{"provider": "{provider}", "api_key": ...}})' if provider else "")
                )
        return data


class STTConfig(_VendorConfig):
    provider: SttProvider = Field(description="whisper and pocketsphinx run locally")
    model: str | None = Field(default=None, max_length=100, examples=["nova-3-general"])
    language: str | None = Field(default=None, max_length=20, examples=["en", "nl"])
    keyterms: list[str] = Field(default_factory=list, max_length=100)
    noise_suppression: bool = Field(
        default=False,
        alias="noiseSuppression",
        validation_alias=AliasChoices("noiseSuppression", "noise_suppression"),
        description=(
            "RNNoise on the caller's audio before voice detection and transcription "
            "(offline; off by default, see docs: it costs CPU and hurts some voices)"
        ),
    )


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class LLMConfig(_VendorConfig):
    # the one cross-field rule here JSON Schema can state
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"provider": {"const": "openai-compatible"}},
                "required": ["provider"],
            },
            "then": {"required": ["base_url"]},
        }
    )

    provider: LlmProvider = Field(description="openai-compatible needs base_url")
    model: str | None = Field(default=None, max_length=200, examples=["gpt-4o-mini"])
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int | None = Field(
        default=None, ge=1, le=32_000, validation_alias=AliasChoices("max_tokens", "maxTokens")
    )
    messages: list[ChatMessageIn] = Field(default_factory=list, max_length=100)
    tools: list[Tool] = Field(
        default_factory=list,
        max_length=128,
        description="Function tool names must be unique within an agent (else 400).",
    )
    #: realtime voice (xAI), e.g. "ara"
    voice: str | None = Field(default=None, max_length=100)
    #: OpenAI-compatible servers (Ollama, vLLM, llama.cpp server...)
    base_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        validation_alias=AliasChoices("base_url", "baseUrl"),
        description="Required with provider openai-compatible.",
    )

    @field_validator("tools", mode="before")
    @classmethod
    def _default_type(cls, v: Any) -> Any:
        return [default_tool_type(t) for t in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _unique_tool_names(self) -> LLMConfig:
        names = [t.name for t in self.tools if t.type == "function"]
        if len(names) != len(set(names)):
            raise ValueError("function tool names must be unique within an agent")
        if self.provider == "openai-compatible" and not self.base_url:
            raise ValueError("provider 'openai-compatible' needs base_url")
        return self


class TTSConfig(_VendorConfig):
    provider: TtsProvider = Field(description="piper runs locally")
    voice_id: str | None = Field(
        default=None,
        alias="voiceId",
        validation_alias=AliasChoices("voiceId", "voice_id", "voice"),
        max_length=200,
        examples=["alloy"],
    )
    model: str | None = Field(default=None, max_length=100, examples=["eleven_flash_v2_5"])
    language: str | None = Field(default=None, max_length=20)

    @field_validator("provider")
    @classmethod
    def _canonical(cls, v: str) -> str:
        return _TTS_ALIASES.get(v, v)


# --- analysis plan (both camelCase and snake_case accepted, camelCase emitted) ----


class _Plan(JsonTypes):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class StructuredDataPlan(_Plan):
    enabled: bool = True
    schema_: JsonSchemaDoc = Field(default_factory=dict, alias="schema")
    messages: list[ChatMessageIn] = Field(default_factory=list, max_length=20)


class SummaryPlan(_Plan):
    enabled: bool = True
    messages: list[ChatMessageIn] = Field(default_factory=list, max_length=20)


class SuccessEvaluationPlan(_Plan):
    enabled: bool = True
    rubric: (
        Literal[
            "NumericScale",
            "DescriptiveScale",
            "Checklist",
            "Matrix",
            "PercentageScale",
            "LikertScale",
            "AutomaticRubric",
            "PassFail",
        ]
        | None
    ) = "PassFail"
    messages: list[ChatMessageIn] = Field(default_factory=list, max_length=20)


class AnalysisPlan(_Plan):
    structured_data_plan: StructuredDataPlan | None = Field(
        default=None,
        alias="structuredDataPlan",
        validation_alias=AliasChoices("structuredDataPlan", "structured_data_plan"),
    )
    summary_plan: SummaryPlan | None = Field(
        default=None,
        alias="summaryPlan",
        validation_alias=AliasChoices("summaryPlan", "summary_plan"),
    )
    success_evaluation_plan: SuccessEvaluationPlan | None = Field(
        default=None,
        alias="successEvaluationPlan",
        validation_alias=AliasChoices("successEvaluationPlan", "success_evaluation_plan"),
    )
    min_messages_threshold: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        alias="minMessagesThreshold",
        validation_alias=AliasChoices("minMessagesThreshold", "min_messages_threshold"),
    )


# --- conversation tuning (Vapi's start/stop speaking plans) --------------------


class StartSpeakingPlan(_Plan):
    """When the caller's turn is over."""

    wait_seconds: float = Field(
        default=0.4,
        ge=0,
        le=5,
        alias="waitSeconds",
        validation_alias=AliasChoices("waitSeconds", "wait_seconds"),
    )
    smart_endpointing_enabled: bool = Field(
        default=True,
        alias="smartEndpointingEnabled",
        validation_alias=AliasChoices("smartEndpointingEnabled", "smart_endpointing_enabled"),
    )


class StopSpeakingPlan(_Plan):
    """How much caller speech interrupts the agent (barge-in)."""

    num_words: int = Field(
        default=2,
        ge=0,
        le=10,
        alias="numWords",
        validation_alias=AliasChoices("numWords", "num_words"),
    )
    voice_seconds: float = Field(
        default=0.5,
        ge=0,
        le=5,
        alias="voiceSeconds",
        validation_alias=AliasChoices("voiceSeconds", "voice_seconds"),
    )
    backoff_seconds: float = Field(
        default=1.0,
        ge=0,
        le=10,
        alias="backoffSeconds",
        validation_alias=AliasChoices("backoffSeconds", "backoff_seconds"),
    )
    hold_seconds: float = Field(
        default=0.1,
        ge=0,
        le=2,
        alias="holdSeconds",
        validation_alias=AliasChoices("holdSeconds", "hold_seconds"),
        description=(
            "Flireo: voice over the agent that holds its speech (silence, nothing dropped) "
            "until the caller's words are judged: an interruption clears it, a backchannel "
            "('mm-hmm') or a cough lets it go on. 0 turns the hold off."
        ),
    )


# --- agent bodies ---------------------------------------------------------------


class _AgentFields(WireModel):
    business_name: str | None = Field(default=None, max_length=200)
    notification_email: EmailStr | None = None
    first_message: str | None = Field(
        default=None,
        max_length=4000,
        validation_alias=AliasChoices("first_message", "firstMessage"),
    )
    webhook_url: str | None = Field(default=None, max_length=2048, pattern=HTTP_URL_PATTERN)
    webhook_secret: str | None = Field(default=None, min_length=1, max_length=256)
    webhook_events: list[WebhookEvent] | None = Field(default=None, max_length=5)
    stt_config: STTConfig | None = None
    llm_config: LLMConfig | None = None
    tts_config: TTSConfig | None = None
    analysis_plan: AnalysisPlan | None = Field(
        default=None, validation_alias=AliasChoices("analysis_plan", "analysisPlan")
    )
    voicemail_message: str | None = Field(default=None, max_length=4000)
    max_duration_seconds: int | None = Field(
        default=None,
        ge=10,
        le=43_200,
        validation_alias=AliasChoices("max_duration_seconds", "maxDurationSeconds"),
    )
    silence_timeout_seconds: int | None = Field(default=None, ge=1, le=3600)
    start_speaking_plan: StartSpeakingPlan | None = Field(
        default=None, validation_alias=AliasChoices("start_speaking_plan", "startSpeakingPlan")
    )
    stop_speaking_plan: StopSpeakingPlan | None = Field(
        default=None, validation_alias=AliasChoices("stop_speaking_plan", "stopSpeakingPlan")
    )
    recording_format: RecordingFormat | None = Field(
        default=None,
        validation_alias=AliasChoices("recording_format", "recordingFormat"),
        description="wav (default) or ogg (Opus in Ogg)",
    )
    #: copied into llm_config.tools at create/update time (templates are copies, not links)
    tool_template_ids: list[str] | None = Field(
        default=None,
        max_length=64,
        validation_alias=AliasChoices("tool_template_ids", "toolTemplateIds"),
    )
    #: copied into analysis_plan.structuredDataPlan at create/update time
    analysis_template_id: str | None = Field(
        default=None, validation_alias=AliasChoices("analysis_template_id", "analysisTemplateId")
    )

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_target(v)
            except UnsafeUrl as exc:
                raise ValueError(str(exc)) from exc
        return v


class AgentCreate(_AgentFields):
    name: str = Field(min_length=1, max_length=200)
    is_active: bool = True
    voicemail_detection: bool = False
    autonomous_silence_handling: bool = False
    gdpr_mode: bool = False
    recording_enabled: bool = Field(
        default=True, validation_alias=AliasChoices("recording_enabled", "recordingEnabled")
    )


class AgentUpdate(_AgentFields):
    """Partial update: only the fields present in the body change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_active: bool | None = None
    voicemail_detection: bool | None = None
    autonomous_silence_handling: bool | None = None
    gdpr_mode: bool | None = None
    recording_enabled: bool | None = Field(
        default=None, validation_alias=AliasChoices("recording_enabled", "recordingEnabled")
    )


class AgentOut(OutModel):
    id: str
    name: str
    business_name: str | None = None
    notification_email: str | None = None
    first_message: str | None = None
    is_active: bool
    webhook_url: str | None = None
    #: masked display form; the secret itself is never returned
    webhook_secret: str | None = None
    webhook_events: list[str] = Field(default_factory=list)
    stt_config: dict[str, Any]
    llm_config: dict[str, Any]
    tts_config: dict[str, Any]
    analysis_plan: dict[str, Any] | None = None
    voicemail_detection: bool
    voicemail_message: str | None = None
    autonomous_silence_handling: bool
    max_duration_seconds: int | None = None
    silence_timeout_seconds: int | None = None
    gdpr_mode: bool
    start_speaking_plan: dict[str, Any]
    stop_speaking_plan: dict[str, Any]
    recording_enabled: bool = True
    recording_format: RecordingFormat = "wav"
    created_at: Timestamp
    updated_at: Timestamp


class AgentWarning(BaseModel):
    """A configuration that is stored but cannot work as it is (create/update answers)."""

    #: ``missing_api_key``, ``base_url_ignored``, ``webhook_url_missing``
    code: str
    #: the field to change, e.g. ``llm_config.provider``
    param: str
    message: str
