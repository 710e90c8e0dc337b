"""Everything one live conversation needs to know, as plain data.

The REST/SIP layer builds a :class:`SessionConfig` from the stored agent plus the
per-call overrides (assistant-request reply, outbound ``first_message``...); the
engine never reads the database or the wire schemas itself.
:func:`tools_from_llm_config` turns ``llm_config.tools`` (any accepted
spelling) into the engine's tool objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from flireo.domain.tools import (
    EndCallTool as WireEndCallTool,
)
from flireo.domain.tools import (
    FunctionTool as WireFunctionTool,
)
from flireo.domain.tools import (
    Tool as WireTool,
)
from flireo.domain.tools import (
    TransferCallTool as WireTransferCallTool,
)
from flireo.domain.tools import (
    default_tool_type,
)

Direction = Literal["inbound", "outbound"]
PromptRole = Literal["system", "user", "assistant"]

#: names of the built-in tools as the LLM sees them (Vapi's spelling)
END_CALL_TOOL = "endCall"
TRANSFER_CALL_TOOL = "transferCall"
SEND_DTMF_TOOL = "sendDtmf"
BUILTIN_TOOL_NAMES = frozenset({END_CALL_TOOL, TRANSFER_CALL_TOOL, SEND_DTMF_TOOL})


# --- tools ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A customer tool answered by the ``tool-calls`` webhook."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    #: the tool's own endpoint; None: the agent's webhook URL
    url: str | None = None
    #: True: fire the webhook without waiting and say ``async_response``
    is_async: bool = False
    async_response: str | None = None


@dataclass(frozen=True, slots=True)
class EndCallTool:
    """Lets the LLM hang up (after what it already said has been played)."""

    description: str | None = None


@dataclass(frozen=True, slots=True)
class TransferDestination:
    #: E.164 number or ``sip:``/``sips:`` URI
    target: str
    #: helps the LLM choose
    description: str | None = None
    #: said to the caller before the transfer
    message: str | None = None


@dataclass(frozen=True, slots=True)
class TransferCallTool:
    destinations: tuple[TransferDestination, ...]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class SendDtmfTool:
    """Lets the LLM press phone keys (IVR menus); not part of the Flireo wire schema."""

    description: str | None = None


ToolConfig = FunctionTool | EndCallTool | TransferCallTool | SendDtmfTool


# --- who and where ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call as tool webhooks describe it (webhooks.md §5)."""

    call_id: str
    direction: Direction = "inbound"
    #: our number (``phoneNumber.number``) and its display name
    phone_number: str | None = None
    phone_number_name: str | None = None
    #: the remote party (``customer.number``)
    customer_number: str | None = None

    @property
    def call_type(self) -> str:
        return "outboundPhoneCall" if self.direction == "outbound" else "inboundPhoneCall"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """The agent's webhook: default target of function tools."""

    url: str | None = None
    secret: str | None = None
    #: enabled event types; None means all of them
    events: frozenset[str] | None = None

    def sends(self, event: str) -> bool:
        return self.events is None or event in self.events


@dataclass(frozen=True, slots=True)
class PromptMessage:
    role: PromptRole
    content: str


# --- behaviour knobs --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpointing:
    """When the caller's turn is over (Vapi's ``startSpeakingPlan``)."""

    #: trailing silence that ends a turn (``waitSeconds``)
    silence_s: float = 0.4
    #: extra wait while a streaming STT partial ends mid-phrase ("...and", "the", a comma);
    #: 0 turns smart endpointing off
    max_extension_s: float = 0.8
    #: Silero probability that counts as speech
    vad_threshold: float = 0.5
    #: audio kept from before the detected onset and given to a per-utterance STT
    preroll_ms: int = 400
    #: Smart Turn model (:mod:`flireo.media.smart_turn`) on each end-of-speech candidate:
    #: the candidate comes after ``turn_model_silence_s``; "complete" ends the turn there,
    #: "incomplete" waits for more speech up to ``turn_model_max_wait_s`` of silence.
    #: Off: the silence-only policy above (``silence_s``, ``max_extension_s``).
    turn_model: bool = False
    turn_model_silence_s: float = 0.15
    turn_model_max_wait_s: float = 2.0
    #: model probability at or above which the turn is complete
    turn_model_threshold: float = 0.5
    #: RNNoise (:mod:`flireo.media.denoise`) on the caller's audio before the VAD and STT
    noise_suppression: bool = False


@dataclass(frozen=True, slots=True)
class BargeIn:
    """How much caller speech interrupts the agent (Vapi's ``stopSpeakingPlan``).

    Measured on Piper speech with the engine's VAD (voiced time counted after the
    onset is confirmed): "Mm-hmm." 440 ms, "Okay." 360 ms, "Uh-huh." 200 ms,
    "Wait, stop please." 1040 ms, a short question 1380 ms; synthetic coughs
    never start speech. So 500 ms of voice interrupts a real sentence within
    about half a second while backchannels do not.

    Before that, ``hold_ms`` of voice holds the agent's speech (the caller hears
    silence, nothing is dropped) until the utterance is judged: a real turn clears
    it, a backchannel or cough lets it go on where it stopped. The agent falls
    silent within about a quarter of a second of the caller's first word either
    way, and a "mm-hmm" costs a short pause instead of the reply.
    """

    enabled: bool = True
    #: voiced caller speech over the agent that holds its speech until the utterance
    #: is judged (0: never hold)
    hold_ms: int = 100
    #: a hold ends by itself after this long (an utterance whose final never came)
    hold_max_s: float = 3.0
    #: voiced caller speech that interrupts while the caller is still talking
    min_speech_ms: int = 500
    #: recognised words (backchannels such as "mm-hmm", "okay" not counted) in a
    #: streaming partial that interrupt while the caller is still talking
    min_words: int = 2
    #: words in the final transcript of a shorter utterance that still make it a
    #: real turn ("Stop.", "Sorry?"); a backchannel or cough stays ignored
    min_final_words: int = 1


@dataclass(frozen=True, slots=True)
class Fillers:
    """Said once while a slow synchronous tool runs."""

    delay_s: float = 1.5
    phrases: tuple[str, ...] = ("One moment please.", "Let me check that.", "Just a second.")


@dataclass(frozen=True, slots=True)
class SilenceHandling:
    """``autonomous_silence_handling`` (guides.md §15) and ``silence_timeout_seconds``."""

    enabled: bool = False
    first_check_s: float = 7.0
    interval_s: float = 12.0
    max_checks: int = 3
    #: without autonomous checks: hang up after this much caller silence
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class VoicemailDetection:
    """Outbound only (guides.md §14): the callee's first utterance is examined."""

    enabled: bool = False
    #: left after the greeting; None or "" hangs up silently
    message: str | None = None
    #: how long the first message waits for the callee to say something first
    greeting_wait_s: float = 4.0


@dataclass(frozen=True, slots=True)
class Dtmf:
    #: keys pressed within this gap form one input ("[DTMF] 1234#"); ``#`` ends it at once
    inter_digit_timeout_s: float = 2.0


@dataclass(frozen=True)
class SessionConfig:
    call: CallInfo
    #: the prompt: ``llm_config.messages`` (system first, usually)
    messages: tuple[PromptMessage, ...] = ()
    first_message: str | None = None
    temperature: float | None = 0.7
    max_tokens: int | None = None
    tools: tuple[ToolConfig, ...] = ()
    webhook: WebhookTarget = field(default_factory=WebhookTarget)
    #: BCP-47-ish code given to the STT (``en``, ``nl``)
    language: str | None = None
    stt_keyterms: tuple[str, ...] = ()
    #: realtime voice (xAI ``ara``...)
    voice: str | None = None
    endpointing: Endpointing = field(default_factory=Endpointing)
    barge_in: BargeIn = field(default_factory=BargeIn)
    fillers: Fillers = field(default_factory=Fillers)
    silence: SilenceHandling = field(default_factory=SilenceHandling)
    voicemail: VoicemailDetection = field(default_factory=VoicemailDetection)
    dtmf: Dtmf = field(default_factory=Dtmf)
    max_duration_seconds: float | None = None
    max_duration_message: str = "We have reached the time limit for this call. Goodbye!"
    #: the agent hangs up after saying one of these (``assistant-said-end-call-phrase``)
    end_call_phrases: tuple[str, ...] = ()
    #: synchronous tool webhook deadline (webhooks.md §2: 10 s)
    tool_timeout_s: float = 10.0
    #: LLM rounds per turn (a round may call tools and ask again)
    max_tool_rounds: int = 5
    #: how long in-flight async tool webhooks may finish after the call ended
    async_tool_grace_s: float = 5.0

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools if isinstance(t, FunctionTool)]
        if len(names) != len(set(names)):
            raise ValueError("function tool names must be unique")
        clash = BUILTIN_TOOL_NAMES.intersection(names)
        if clash:
            raise ValueError(f"function tool names clash with built-in tools: {sorted(clash)}")
        for kind in (EndCallTool, TransferCallTool, SendDtmfTool):
            if sum(isinstance(t, kind) for t in self.tools) > 1:
                raise ValueError(f"at most one {kind.__name__} per agent")
        if self.max_tool_rounds < 1:
            raise ValueError("max_tool_rounds must be at least 1")

    @property
    def system_prompt(self) -> str:
        """The system messages joined (what a realtime model takes as instructions)."""
        return "\n\n".join(m.content for m in self.messages if m.role == "system")

    @property
    def effective_tools(self) -> tuple[ToolConfig, ...]:
        """The configured tools, plus ``endCall`` when silence handling needs it."""
        if self.silence.enabled and not any(isinstance(t, EndCallTool) for t in self.tools):
            return (*self.tools, EndCallTool())
        return self.tools


# --- from the wire ------------------------------------------------------------------

_WIRE_TOOLS: TypeAdapter[list[WireTool]] = TypeAdapter(list[WireTool])


def tools_from_llm_config(raw: Iterable[Mapping[str, Any]]) -> tuple[ToolConfig, ...]:
    """``llm_config.tools`` entries (Flireo flat or Vapi nested spelling) as engine tools.

    Raises :class:`pydantic.ValidationError` for entries the API would refuse.
    """
    parsed = _WIRE_TOOLS.validate_python([default_tool_type(dict(t)) for t in raw])
    tools: list[ToolConfig] = []
    for tool in parsed:
        if isinstance(tool, WireFunctionTool):
            tools.append(
                FunctionTool(
                    name=tool.name,
                    description=tool.description,
                    parameters=dict(tool.parameters),
                    url=tool.url,
                    is_async=tool.is_async,
                    async_response=tool.async_response,
                )
            )
        elif isinstance(tool, WireEndCallTool):
            tools.append(EndCallTool(description=tool.description))
        elif isinstance(tool, WireTransferCallTool):
            tools.append(
                TransferCallTool(
                    description=tool.description,
                    destinations=tuple(
                        TransferDestination(
                            target=d.target, description=d.description, message=d.message
                        )
                        for d in tool.destinations
                    ),
                )
            )
    return tuple(tools)
