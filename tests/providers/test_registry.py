from __future__ import annotations

import httpx
import pytest

from flireo.errors import MissingCredentials, ProviderError
from flireo.providers.llm.anthropic import AnthropicLLM
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.realtime.xai import XaiRealtimeModel
from flireo.providers.registry import build_llm, build_realtime, build_stt, build_tts
from flireo.providers.stt.deepgram import DeepgramSTT
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.stt.openai_stt import OpenAITranscriptionSTT
from flireo.providers.tts.cartesia import CartesiaTTS
from flireo.providers.tts.elevenlabs import ElevenLabsTTS
from flireo.providers.tts.local_piper import PiperTTS
from flireo.providers.tts.openai_tts import OpenAITTS
from flireo.settings import Settings


async def test_configs_become_the_right_clients() -> None:
    settings = Settings(groq_base_url="http://127.0.0.1:9/groq")
    async with httpx.AsyncClient() as http:
        groq = build_llm(
            {"provider": "groq", "model": "llama"}, api_key="k", settings=settings, http=http
        )
        assert isinstance(groq, OpenAICompatibleLLM)
        assert (groq.provider, groq.model, groq.base_url) == (
            "groq",
            "llama",
            "http://127.0.0.1:9/groq",
        )
        local = build_llm(
            {
                "provider": "openai-compatible",
                "model": "qwen",
                "base_url": "http://127.0.0.1:8080/v1",
            },
            api_key=None,
            settings=settings,
            http=http,
        )
        assert isinstance(local, OpenAICompatibleLLM)
        assert local.base_url == "http://127.0.0.1:8080/v1"
        ollama = build_llm(
            {"provider": "ollama", "model": "llama3"}, api_key=None, settings=settings, http=http
        )
        assert ollama.provider == "ollama"
        claude = build_llm(
            {"provider": "anthropic", "model": "claude-3"},
            api_key="k",
            settings=settings,
            http=http,
        )
        assert isinstance(claude, AnthropicLLM)
        with pytest.raises(MissingCredentials):
            build_llm({"provider": "openai"}, api_key=None, settings=settings, http=http)
    assert isinstance(
        build_stt({"provider": "whisper"}, api_key=None, settings=settings), WhisperSTT
    )
    tts = build_tts({"provider": "piper", "voiceId": "joe-us"}, api_key=None, settings=settings)
    assert isinstance(tts, PiperTTS)
    realtime = build_realtime(
        {"provider": "xai_realtime", "voice": "ara"}, api_key="k", settings=settings
    )
    assert isinstance(realtime, XaiRealtimeModel)
    with pytest.raises(MissingCredentials):
        build_realtime({"provider": "xai_realtime"}, api_key=None, settings=settings)


async def test_vendor_speech_configs_become_their_clients() -> None:
    settings = Settings(
        openai_base_url="http://127.0.0.1:9/v1",
        deepgram_url="ws://127.0.0.1:9/v1/listen",
        elevenlabs_base_url="http://127.0.0.1:9/el",
        cartesia_base_url="http://127.0.0.1:9/ca",
    )
    deepgram = build_stt(
        {"provider": "deepgram", "model": "nova-3-medical"}, api_key="k", settings=settings
    )
    assert isinstance(deepgram, DeepgramSTT)
    assert (deepgram.model, deepgram.url) == ("nova-3-medical", "ws://127.0.0.1:9/v1/listen")
    assert isinstance(
        build_stt({"provider": "openai"}, api_key="k", settings=settings), OpenAITranscriptionSTT
    )
    assert isinstance(
        build_tts({"provider": "openai", "voiceId": "nova"}, api_key="k", settings=settings),
        OpenAITTS,
    )
    assert isinstance(
        build_tts({"provider": "elevenlabs", "voiceId": "v1"}, api_key="k", settings=settings),
        ElevenLabsTTS,
    )
    assert isinstance(
        build_tts({"provider": "cartesia", "voiceId": "v2"}, api_key="k", settings=settings),
        CartesiaTTS,
    )
    with pytest.raises(MissingCredentials):
        build_stt({"provider": "deepgram"}, api_key=None, settings=settings)
    with pytest.raises(ProviderError, match="voiceId"):
        build_tts({"provider": "elevenlabs"}, api_key="k", settings=settings)
    with pytest.raises(ProviderError, match="unknown"):
        build_tts({"provider": "polly"}, api_key="k", settings=settings)
