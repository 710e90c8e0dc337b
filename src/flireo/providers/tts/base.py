"""Text-to-speech interface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono s16le PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int


class TextToSpeech(Protocol):
    provider: str
    voice: str

    def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        """Speak one sentence (or short text); first chunk as early as possible.

        Raises :class:`flireo.errors.ProviderError` on vendor failures.
        """
        ...

    async def aclose(self) -> None: ...
