"""Calls, outbound requests and live control commands (resources.md §4, §5)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field

from flireo.domain.common import E164, OutModel, Timestamp, WireModel

CallStatus = Literal[
    "connecting", "dialing", "ringing", "in-progress", "ended", "failed", "rejected"
]
ACTIVE_STATUSES: tuple[CallStatus, ...] = ("connecting", "dialing", "ringing", "in-progress")
FINAL_STATUSES: tuple[CallStatus, ...] = ("ended", "failed", "rejected")


class CallOut(OutModel):
    id: str
    type: str
    #: ``web``: a browser call (``POST /calls/web``, type ``webCall``)
    direction: Literal["inbound", "outbound", "web"]
    caller_phone: str | None
    assistant_phone: str | None
    status: CallStatus
    error: str | None
    ended_reason: str | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    duration_seconds: int | None
    summary: str | None
    agent_name: str | None
    business_name: str | None
    agent_id: str | None
    number_id: str | None
    phone_number: str | None
    campaign_id: str | None
    cost: float | None
    #: signed links (no API key needed) to the mono mix and the stereo recording
    #: (caller left, agent right); null when the call has no stored recording
    recording_url: str | None = None
    stereo_recording_url: str | None = None
    created_at: Timestamp
    updated_at: Timestamp


class CallDetailOut(CallOut):
    analysis_result: dict[str, Any] | None
    messages: list[dict[str, Any]]
    transcript: str | None
    metrics: dict[str, Any] | None
    #: null (not recorded) | pending (storing is retried) | stored | failed | deleted
    recording_status: str | None = None
    recording_format: Literal["wav", "ogg"] | None = None
    recording_duration_seconds: float | None = None
    #: why the recording is not (yet) stored
    recording_error: str | None = None


class OutboundCallRequest(WireModel):
    destination: E164 = Field(validation_alias=AliasChoices("destination", "phone_number", "to"))
    agent_id: str = Field(validation_alias=AliasChoices("agent_id", "assistant_id", "agentId"))
    #: caller id: one of the organization's numbers (default: the first with a SIP trunk)
    number_id: str | None = None
    first_message: str | None = Field(
        default=None,
        max_length=4000,
        validation_alias=AliasChoices("first_message", "firstMessage"),
    )
    context: str | None = Field(default=None, max_length=20_000)
    #: false: this call is not recorded (true leaves it to the agent)
    recording_enabled: bool | None = Field(
        default=None, validation_alias=AliasChoices("recording_enabled", "recordingEnabled")
    )


class OutboundCallResponse(OutModel):
    success: bool = True
    call_id: str
    room_name: str
    status: str = "dialing"


class InjectContext(WireModel):
    type: Literal["inject-context"]
    content: str = Field(min_length=1, max_length=20_000)
    trigger_response: bool = False


class Say(WireModel):
    type: Literal["say"]
    content: str = Field(min_length=1, max_length=4000)
    end_after: bool = False


class EndCall(WireModel):
    type: Literal["end-call"]
    message: str | None = Field(default=None, max_length=4000)


class Transfer(WireModel):
    type: Literal["transfer"]
    destination: str = Field(
        min_length=3, max_length=512, pattern=r"^(\+[1-9]\d{6,14}|sips?:[!-~]+)$"
    )
    message: str | None = Field(default=None, max_length=4000)


ControlCommand = Annotated[InjectContext | Say | EndCall | Transfer, Field(discriminator="type")]


class DialEndedReason:
    """``ended_reason`` values the dialer sets when an outbound call never connects
    (Vapi-compatible names). Conversation endings come from the engine."""

    BUSY = "customer-busy"
    NO_ANSWER = "customer-did-not-answer"
    FAILED = "dial-failed"
    #: the trunk rejected our credentials (401/407 after authenticating)
    AUTH_FAILED = "dial-failed-authentication"
    DISABLED = "outbound-calling-disabled"
    #: the process stopped while the call was being dialed
    INTERRUPTED = "dial-interrupted"


#: ``ended_reason`` of a call whose worker stopped heart-beating (SIGKILL, power loss):
#: another worker ended it (status ``ended`` when it had been answered, else ``failed``),
#: dated to the dead worker's last heartbeat. See :mod:`flireo.cluster.reaper`.
WORKER_DIED = "worker-died"


class SetupEndedReason:
    """``ended_reason`` of a call that failed while it was being set up (status
    ``failed``, inbound or outbound): it ends once, with its report and usage."""

    #: every RTP port of ``FLIREO_RTP_PORT_MIN``..``MAX`` is in use (SIP 503)
    NO_MEDIA_PORT = "call-start-error-no-media-port"
    #: the caller's SDP offers no codec we speak (SIP 488)
    INCOMPATIBLE_SDP = "call-start-error-incompatible-sdp"
    #: the database refused a write or read of the set-up (SIP 500)
    STORE = "call-start-error-database"
    #: anything else that broke the set-up (a bug; logged with its traceback)
    UNKNOWN = "call-start-error-unknown"


class WebhookAttemptOut(OutModel):
    attempt: int
    started_at: Timestamp
    duration_ms: int
    status_code: int | None
    error: str | None


class WebhookEventOut(OutModel):
    #: also the ``webhook-id`` header, stable across retries
    id: str
    event_type: str
    seq: int
    url: str
    status: Literal["pending", "held", "delivered", "failed", "disabled"]
    attempts: int
    next_attempt_at: Timestamp | None
    last_status_code: int | None
    last_error: str | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    deliveries: list[WebhookAttemptOut]


class WebhookLog(OutModel):
    webhooks: list[WebhookEventOut]
