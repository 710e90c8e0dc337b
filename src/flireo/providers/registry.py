"""From an agent's pipeline configs to provider instances.

The one place that maps ``provider`` strings to vendor classes (the engine
only sees the interfaces). Keys are resolved by the caller (BYOK first, then
the platform's own); a vendor class raises ``MissingCredentials`` when it
needs a key and has none. Vendor base URLs come from settings so operators
(and tests) can point them elsewhere.

An agent's own ``llm_config.base_url`` (a proxy, a self-hosted server) is
sent the organization's BYOK key only: the platform's key is kept from any
address an agent chose. Without a BYOK key such a server is called without
one (a self-hosted server often needs none); if it answers 401 the call ends
``pipeline-error-<provider>-llm-unauthorized``.
"""

from __future__ import annotations

from typing import Any

import httpx

from flireo.errors import ProviderError
from flireo.providers.llm.anthropic import AnthropicLLM
from flireo.providers.llm.base import LanguageModel
from flireo.providers.llm.openai_compat import DEFAULT_BASE_URLS, OpenAICompatibleLLM
from flireo.providers.realtime.base import RealtimeModel
from flireo.providers.realtime.xai import XaiRealtimeModel
from flireo.providers.stt.base import SpeechToText
from flireo.providers.stt.deepgram import DeepgramSTT
from flireo.providers.stt.local_pocketsphinx import PocketsphinxSTT
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.stt.openai_stt import OpenAITranscriptionSTT
from flireo.providers.tts.base import TextToSpeech
from flireo.providers.tts.cartesia import CartesiaTTS
from flireo.providers.tts.elevenlabs import ElevenLabsTTS
from flireo.providers.tts.local_piper import PiperTTS
from flireo.providers.tts.openai_tts import OpenAITTS
from flireo.settings import Settings

_OPENAI_COMPATIBLE = frozenset({"openai", "groq", "xai", "mistral", "ollama", "openai-compatible"})


def llm_base_url(provider: str, config: dict[str, Any], settings: Settings) -> str:
    if config.get("base_url"):
        return str(config["base_url"])
    configured = getattr(settings, f"{provider}_base_url", None)
    if isinstance(configured, str) and configured:
        return configured
    if provider in DEFAULT_BASE_URLS:
        return DEFAULT_BASE_URLS[provider]
    raise ProviderError(provider, "no base_url configured")


def build_llm(
    config: dict[str, Any], *, api_key: str | None, settings: Settings, http: httpx.AsyncClient
) -> LanguageModel:
    provider = str(config.get("provider") or settings.default_llm_provider)
    model = str(config.get("model") or settings.default_llm_model)
    if provider == "anthropic":
        return AnthropicLLM(
            model=model, api_key=api_key, base_url=settings.anthropic_base_url, http=http
        )
    if provider in _OPENAI_COMPATIBLE:
        if config.get("base_url") and api_key == getattr(settings, f"{provider}_api_key", None):
            api_key = None  # the platform's key, for an address the agent chose
        return OpenAICompatibleLLM(
            provider=provider,
            model=model,
            api_key=api_key,
            base_url=llm_base_url(provider, config, settings),
            http=http,
            # a server the agent names (self-hosted, a proxy) is called without a key
            # when none is set; a 401 from it ends the call as ...-llm-unauthorized
            key_required=False if config.get("base_url") else None,
        )
    raise ProviderError(provider, "unknown LLM provider")


def build_stt(
    config: dict[str, Any],
    *,
    api_key: str | None,
    settings: Settings,
    http: httpx.AsyncClient | None = None,
) -> SpeechToText:
    provider = str(config.get("provider") or settings.default_stt_provider)
    model = config.get("model")
    if provider == "whisper":
        return WhisperSTT()
    if provider == "pocketsphinx":
        return PocketsphinxSTT()
    if provider == "deepgram":
        return DeepgramSTT(
            api_key=api_key, model=str(model or "nova-3-general"), url=settings.deepgram_url
        )
    if provider == "openai":
        return OpenAITranscriptionSTT(
            api_key=api_key,
            model=str(model or "gpt-4o-mini-transcribe"),
            base_url=settings.openai_base_url,
            http=http,
        )
    raise ProviderError(provider, "unknown or unavailable STT provider")


def build_tts(
    config: dict[str, Any],
    *,
    api_key: str | None,
    settings: Settings,
    http: httpx.AsyncClient | None = None,
) -> TextToSpeech:
    provider = str(config.get("provider") or settings.default_tts_provider)
    voice = config.get("voiceId") or config.get("voice_id")
    model = config.get("model")
    speed = config.get("speed")
    if provider == "piper":
        return PiperTTS(
            str(voice or settings.default_tts_voice),
            speed=float(speed) if isinstance(speed, int | float) else None,
        )
    if provider == "openai":
        return OpenAITTS(
            api_key=api_key,
            voice=str(voice or "alloy"),
            model=str(model or "gpt-4o-mini-tts"),
            base_url=settings.openai_base_url,
            http=http,
            speed=float(speed) if isinstance(speed, int | float) else None,
        )
    if provider in ("elevenlabs", "cartesia") and not voice:
        raise ProviderError(provider, "tts_config.voiceId is required")
    if provider == "elevenlabs":
        return ElevenLabsTTS(
            api_key=api_key,
            voice_id=str(voice),
            model=str(model or "eleven_flash_v2_5"),
            base_url=settings.elevenlabs_base_url,
            http=http,
        )
    if provider == "cartesia":
        return CartesiaTTS(
            api_key=api_key,
            voice_id=str(voice),
            model=str(model or "sonic-2"),
            base_url=settings.cartesia_base_url,
            http=http,
        )
    raise ProviderError(provider, "unknown or unavailable TTS provider")


def build_realtime(
    config: dict[str, Any], *, api_key: str | None, settings: Settings
) -> RealtimeModel:
    provider = str(config.get("provider"))
    if provider == "xai_realtime":
        model = config.get("model")
        return XaiRealtimeModel(
            api_key=api_key,
            model=str(model) if model else None,
            url=settings.xai_realtime_url,
        )
    raise ProviderError(provider, "not a realtime provider")


def is_realtime(llm_config: dict[str, Any]) -> bool:
    return llm_config.get("provider") == "xai_realtime"
