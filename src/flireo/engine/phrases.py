"""Synthesized fixed phrases, kept for the next call.

An agent's first message, its filler phrases and its transfer lines are the
same text on every call. Synthesizing them again costs the caller time to first
audio and (with local Piper) 0.1-0.3 s of CPU per sentence, which bounds how
many calls per second a node can greet. :class:`PhraseCache` keeps their audio
per voice and text, least recently used out first, within a byte budget.

Only a TTS that names its exact rendition (a ``phrase_key`` attribute: voice
plus every setting that changes the sound) takes part; text from the LLM or a
control ``say`` is never stored (it rarely repeats and would push the phrases
out).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from flireo.providers.tts.base import AudioChunk, TextToSpeech

#: what the engine says from the agent's config, the same on every call
FIXED_PHRASE_SOURCES = frozenset({"first-message", "filler", "transfer"})

#: enough for about 200 phrases of 4 s at 22,050 Hz
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024


def phrase_key(tts: TextToSpeech) -> str | None:
    """The rendition ``tts`` produces (None: it does not take part)."""
    key = getattr(tts, "phrase_key", None)
    return key if isinstance(key, str) and key else None


class PhraseCache:
    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[AudioChunk, ...]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, voice: str, text: str) -> tuple[AudioChunk, ...] | None:
        key = (voice, text)
        chunks = self._entries.get(key)
        if chunks is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return chunks

    def put(self, voice: str, text: str, chunks: Sequence[AudioChunk]) -> None:
        size = sum(len(c.pcm) for c in chunks)
        if not chunks or size > self.budget_bytes:
            return
        key = (voice, text)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= sum(len(c.pcm) for c in old)
        self._entries[key] = tuple(chunks)
        self._bytes += size
        while self._bytes > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= sum(len(c.pcm) for c in evicted)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


#: the process's cache (calls of every agent share it, like the loaded voices)
PHRASES = PhraseCache()
