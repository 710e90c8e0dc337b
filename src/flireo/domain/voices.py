"""The voice catalog (resources.md §8): the voices usable on this server right now.

The reference documents no response shape; schemas.md suggests
``{id, name, language, provider, gender?}``, extended here as below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from flireo.domain.common import Pagination

#: providers with voices: the local Piper voice(s), the TTS vendors, and xAI's
#: speech-to-speech voices (used as ``llm_config.voice`` with ``xai_realtime``)
VoiceProvider = Literal["piper", "openai", "elevenlabs", "cartesia", "xai_realtime"]
VOICE_PROVIDERS: tuple[VoiceProvider, ...] = (
    "piper",
    "openai",
    "elevenlabs",
    "cartesia",
    "xai_realtime",
)
#: the ``by_language`` group of voices that speak the language of their text
MULTILINGUAL = "multilingual"


class VoiceOut(BaseModel):
    id: str
    name: str
    provider: VoiceProvider
    #: BCP 47 tag or ISO 639-1 code; null: multilingual (speaks the text's language)
    language: str | None = None
    gender: str | None = None
    #: native output rate in Hz when fixed (vendor voices synthesize at the rate asked)
    sample_rate: int | None = None
    #: "local" voices run on this server; "vendor" ones use the vendor's key
    kind: Literal["local", "vendor"]
    #: the agent field that selects this voice
    set_in: Literal["tts_config.voiceId", "llm_config.voice"]


class VoicesResponse(BaseModel):
    voices: list[VoiceOut]
    #: ids of the listed voices grouped by language (``multilingual`` for null)
    by_language: dict[str, list[str]]
    #: requested providers with no usable voices now, with the reason
    #: (no key for the organization or the platform, or the vendor's error)
    unavailable: dict[str, str]
    pagination: Pagination
