"""Per-turn latency parts and the vendor usage a call is billed for.

A turn's clock starts at the *end-of-turn decision* (the VAD heard enough
silence, or a DTMF/control/silence trigger): every part is measured on the
injected clock from there or from its own request:

- ``stt_ms``: end of turn → final transcript;
- ``llm_first_token_ms``: LLM request → first token (text or tool call);
- ``llm_first_sentence_ms``: LLM request → first complete sentence;
- ``tts_first_byte_ms``: first sentence's TTS request → first audio chunk;
- ``first_audio_ms``: end of turn → first agent audio handed to the transport;
- ``endpointing_ms``: the silence waited before the end-of-turn decision.

Each turn also sits on the call's timeline (the recording's: seconds from the
answer, the zero of the transcript's ``secondsFromStart``): ``start_s`` (the
VAD reported the caller speaking, else the trigger), ``end_of_turn_s``, ``first_audio_s``
(first agent audio handed to the line) and ``end_s`` (the reply's audio played
out, or was cut by barge-in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Usage:
    """What the vendors did for this call (billing and the usage log)."""

    stt_seconds: float = 0.0
    llm_prompt_tokens: int = 0
    llm_completion_tokens: int = 0
    tts_characters: int = 0
    #: speech-to-speech audio, each way
    realtime_input_seconds: float = 0.0
    realtime_output_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stt_seconds"] = round(self.stt_seconds, 3)
        data["realtime_input_seconds"] = round(self.realtime_input_seconds, 3)
        data["realtime_output_seconds"] = round(self.realtime_output_seconds, 3)
        return data


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000, 1)


@dataclass(slots=True)
class TurnTimer:
    """Timestamps (clock monotonic seconds) collected while one agent turn runs."""

    turn: int
    #: ``user``, ``dtmf``, ``first-message``, ``control``, ``silence``, ``tool``...
    trigger: str
    started_at: float
    #: the caller's utterance began (as the VAD reported it; user turns)
    caller_started_at: float | None = None
    endpointing_s: float | None = None
    end_of_turn_at: float | None = None
    final_at: float | None = None
    llm_request_at: float | None = None
    llm_first_token_at: float | None = None
    llm_first_sentence_at: float | None = None
    tts_request_at: float | None = None
    tts_first_byte_at: float | None = None
    first_audio_at: float | None = None
    interrupted: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: list[str] = field(default_factory=list)

    # one setter per moment: only the first sample counts
    def llm_requested(self, at: float) -> None:
        if self.llm_request_at is None:
            self.llm_request_at = at

    def llm_token(self, at: float) -> None:
        if self.llm_first_token_at is None:
            self.llm_first_token_at = at

    def llm_sentence(self, at: float) -> None:
        if self.llm_first_sentence_at is None:
            self.llm_first_sentence_at = at

    def tts_requested(self, at: float) -> None:
        if self.tts_request_at is None:
            self.tts_request_at = at

    def tts_byte(self, at: float) -> None:
        if self.tts_first_byte_at is None:
            self.tts_first_byte_at = at

    def audio_out(self, at: float) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = at

    def finish(self, offset: Callable[[float], float], ended_at: float) -> TurnMetrics:
        """The turn's numbers; ``offset`` maps a clock time to seconds on the call's
        timeline, ``ended_at`` is when the turn ended."""
        origin = self.end_of_turn_at if self.end_of_turn_at is not None else self.started_at
        start = self.caller_started_at if self.caller_started_at is not None else origin
        return TurnMetrics(
            turn=self.turn,
            trigger=self.trigger,
            seconds_from_start=offset(self.started_at),
            start_s=offset(start),
            end_of_turn_s=None if self.end_of_turn_at is None else offset(self.end_of_turn_at),
            first_audio_s=None if self.first_audio_at is None else offset(self.first_audio_at),
            end_s=offset(max(ended_at, start)),
            endpointing_ms=None if self.endpointing_s is None else round(self.endpointing_s * 1000),
            stt_ms=_ms(self.end_of_turn_at, self.final_at),
            llm_first_token_ms=_ms(self.llm_request_at, self.llm_first_token_at),
            llm_first_sentence_ms=_ms(self.llm_request_at, self.llm_first_sentence_at),
            tts_first_byte_ms=_ms(self.tts_request_at, self.tts_first_byte_at),
            first_audio_ms=_ms(origin, self.first_audio_at),
            interrupted=self.interrupted,
            llm_prompt_tokens=self.prompt_tokens,
            llm_completion_tokens=self.completion_tokens,
            tool_calls=list(self.tool_calls),
        )


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    turn: int
    trigger: str
    seconds_from_start: float
    #: on the call's (and recording's) timeline, seconds from the answer
    start_s: float
    end_of_turn_s: float | None
    first_audio_s: float | None
    end_s: float
    endpointing_ms: float | None
    stt_ms: float | None
    llm_first_token_ms: float | None
    llm_first_sentence_ms: float | None
    tts_first_byte_ms: float | None
    first_audio_ms: float | None
    interrupted: bool
    llm_prompt_tokens: int
    llm_completion_tokens: int
    tool_calls: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(turns: list[TurnMetrics]) -> dict[str, Any]:
    """The end-of-call report's ``metrics``: every turn plus simple averages."""

    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(sum(present) / len(present), 1) if present else None

    return {
        "turns": [t.to_dict() for t in turns],
        "average": {
            "stt_ms": mean([t.stt_ms for t in turns]),
            "llm_first_token_ms": mean([t.llm_first_token_ms for t in turns]),
            "tts_first_byte_ms": mean([t.tts_first_byte_ms for t in turns]),
            "first_audio_ms": mean([t.first_audio_ms for t in turns if t.trigger == "user"]),
        },
        "interruptions": sum(t.interrupted for t in turns),
    }
