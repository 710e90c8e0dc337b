"""Speech-to-speech (realtime) interface, e.g. xAI realtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from flireo.providers.llm.base import ToolCall, ToolSpec


@dataclass(frozen=True, slots=True)
class RealtimeAudio:
    pcm: bytes
    sample_rate: int


@dataclass(frozen=True, slots=True)
class RealtimeTranscript:
    role: Literal["user", "assistant"]
    text: str
    is_final: bool


@dataclass(frozen=True, slots=True)
class RealtimeToolCall:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class RealtimeSpeechStarted:
    """The vendor's own VAD heard the caller start talking (barge-in point)."""


@dataclass(frozen=True, slots=True)
class RealtimeSpeechStopped:
    pass


@dataclass(frozen=True, slots=True)
class RealtimeResponseDone:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RealtimeError:
    message: str
    fatal: bool


RealtimeEvent = (
    RealtimeAudio
    | RealtimeTranscript
    | RealtimeToolCall
    | RealtimeSpeechStarted
    | RealtimeSpeechStopped
    | RealtimeResponseDone
    | RealtimeError
)


class RealtimeSession(Protocol):
    async def send_audio(self, pcm: bytes) -> None:
        """Caller audio, 16 kHz mono s16le (the session converts for the vendor)."""
        ...

    async def add_message(self, role: Literal["user", "assistant", "system"], text: str) -> None:
        """Add text to the conversation without asking for a response."""
        ...

    async def respond(self, instructions: str | None = None) -> None:
        """Ask the model to speak now (optionally with one-off instructions)."""
        ...

    async def cancel(self) -> None:
        """Stop the response being generated (barge-in)."""
        ...

    async def send_tool_result(self, call_id: str, output: str) -> None: ...

    def events(self) -> AsyncIterator[RealtimeEvent]: ...

    async def aclose(self) -> None: ...


class RealtimeModel(Protocol):
    provider: str

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[ToolSpec] = (),
        voice: str | None = None,
        temperature: float | None = None,
    ) -> RealtimeSession: ...
