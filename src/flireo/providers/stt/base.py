"""Speech-to-text interface. Vendors implement it in sibling modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Transcript:
    """A partial (``is_final=False``) or final transcript of the current utterance."""

    text: str
    is_final: bool
    confidence: float | None = None
    language: str | None = None


class SpeechToTextStream(Protocol):
    """One open recognition stream, normally one per call."""

    async def push(self, pcm: bytes) -> None:
        """Feed 16 kHz mono s16le audio (any length, usually 20 ms frames)."""
        ...

    async def finalize(self) -> None:
        """The caller stopped speaking: emit the final transcript of the audio pushed
        since the last final (an empty final if nothing was recognised)."""
        ...

    def transcripts(self) -> AsyncIterator[Transcript]:
        """Partials and finals in order; ends after :meth:`aclose`."""
        ...

    async def aclose(self) -> None: ...


class SpeechToText(Protocol):
    provider: str
    #: True when the engine only produces text on :meth:`SpeechToTextStream.finalize`
    #: (local Whisper); False when it streams partials while audio arrives.
    utterance_based: bool

    async def open(
        self, *, language: str | None = None, keyterms: Sequence[str] = ()
    ) -> SpeechToTextStream: ...
