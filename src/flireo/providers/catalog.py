"""Static facts about the speech vendors, as their documentation states them.

No I/O: the ``/voices`` and ``/byok/config`` endpoints read these to describe
what a vendor offers without calling it. Voice libraries that belong to a
customer (ElevenLabs, Cartesia) are fetched live with each vendor module's
``list_voices``; only documented built-in voices are listed here.

Sources (read 2026): OpenAI API reference "Create speech" (voices, the 24 kHz
``pcm`` format) and "Create transcription" (models); Deepgram "Models &
Languages" and "Keyterm Prompting" (nova-3 only); ElevenLabs "Models" and the
stream-input websocket reference (``output_format`` values); Cartesia "TTS
models" (sonic family); xAI "Voice Agent API" (voices ``eve`` — the default —,
``ara``, ``rex``, ``sal``, ``leo``; 24 kHz PCM). OpenAI and xAI do not document
voice genders; they are left ``None`` rather than guessed.

LLM model lists are the usual choices for a phone agent, not the vendors'
whole catalogs: an agent may name any model id its vendor serves.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BYOK_PROVIDER_INFO",
    "CARTESIA_TTS_MODELS",
    "DEEPGRAM_STT_MODELS",
    "ELEVENLABS_TTS_MODELS",
    "OPENAI_STT_MODELS",
    "OPENAI_TTS_MODELS",
    "OPENAI_TTS_SAMPLE_RATE",
    "OPENAI_TTS_VOICES",
    "SPEECH_MODELS",
    "XAI_REALTIME_SAMPLE_RATE",
    "XAI_REALTIME_VOICES",
    "ModelInfo",
    "ProviderInfo",
    "VoiceInfo",
    "default_model",
]


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    id: str
    name: str
    provider: str
    language: str | None = None
    gender: str | None = None
    sample_rate: int | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    name: str
    default: bool = False


#: ``response_format: "pcm"`` of ``/audio/speech`` is raw 24 kHz s16le mono.
OPENAI_TTS_SAMPLE_RATE = 24_000

_OPENAI_VOICE_IDS = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)

#: The built-in voices of OpenAI ``/audio/speech`` (multilingual: they speak the
#: input's language; the API documents no gender).
OPENAI_TTS_VOICES: tuple[VoiceInfo, ...] = tuple(
    VoiceInfo(
        id=voice,
        name=voice.capitalize(),
        provider="openai",
        language=None,
        gender=None,
        sample_rate=OPENAI_TTS_SAMPLE_RATE,
    )
    for voice in _OPENAI_VOICE_IDS
)

OPENAI_TTS_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("gpt-4o-mini-tts", "GPT-4o Mini TTS", default=True),
    ModelInfo("tts-1", "TTS-1"),
    ModelInfo("tts-1-hd", "TTS-1 HD"),
)

OPENAI_STT_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("gpt-4o-mini-transcribe", "GPT-4o Mini Transcribe", default=True),
    ModelInfo("gpt-4o-transcribe", "GPT-4o Transcribe"),
    ModelInfo("whisper-1", "Whisper"),
)

#: Agents name Deepgram models the way the API spec does (``nova-3-general``);
#: :mod:`flireo.providers.stt.deepgram` maps them to the ``model=`` parameter.
DEEPGRAM_STT_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("nova-3-general", "Nova 3 General", default=True),
    ModelInfo("nova-3-medical", "Nova 3 Medical"),
    ModelInfo("nova-2-general", "Nova 2 General"),
    ModelInfo("nova-2-phonecall", "Nova 2 Phone Call"),
    ModelInfo("nova-2-meeting", "Nova 2 Meeting"),
)

ELEVENLABS_TTS_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("eleven_flash_v2_5", "Eleven Flash v2.5", default=True),
    ModelInfo("eleven_turbo_v2_5", "Eleven Turbo v2.5"),
    ModelInfo("eleven_multilingual_v2", "Eleven Multilingual v2"),
    ModelInfo("eleven_v3", "Eleven v3"),
    ModelInfo("eleven_monolingual_v1", "Eleven English v1"),
)

CARTESIA_TTS_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("sonic-2", "Sonic 2", default=True),
    ModelInfo("sonic-turbo", "Sonic Turbo"),
    ModelInfo("sonic-3", "Sonic 3"),
    ModelInfo("sonic", "Sonic"),
)

#: (provider, category) → models, for ``/byok/config``.
SPEECH_MODELS: dict[tuple[str, str], tuple[ModelInfo, ...]] = {
    ("deepgram", "stt"): DEEPGRAM_STT_MODELS,
    ("openai", "stt"): OPENAI_STT_MODELS,
    ("openai", "tts"): OPENAI_TTS_MODELS,
    ("elevenlabs", "tts"): ELEVENLABS_TTS_MODELS,
    ("cartesia", "tts"): CARTESIA_TTS_MODELS,
}


#: the realtime session's default ``audio/pcm`` rate
XAI_REALTIME_SAMPLE_RATE = 24_000

#: Voices of xAI's speech-to-speech pipeline (``llm_config.voice`` with
#: ``provider: xai_realtime``); multilingual, genders undocumented.
XAI_REALTIME_VOICES: tuple[VoiceInfo, ...] = tuple(
    VoiceInfo(
        id=voice,
        name=voice.capitalize(),
        provider="xai_realtime",
        language=None,
        gender=None,
        sample_rate=XAI_REALTIME_SAMPLE_RATE,
    )
    for voice in ("eve", "ara", "rex", "sal", "leo")
)

OPENAI_LLM_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("gpt-4o-mini", "GPT-4o Mini", default=True),
    ModelInfo("gpt-4o", "GPT-4o"),
    ModelInfo("gpt-4.1-mini", "GPT-4.1 Mini"),
    ModelInfo("gpt-4.1", "GPT-4.1"),
)

ANTHROPIC_LLM_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("claude-haiku-4-5", "Claude Haiku 4.5", default=True),
    ModelInfo("claude-sonnet-4-5", "Claude Sonnet 4.5"),
)

GROQ_LLM_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("llama-3.3-70b-versatile", "Llama 3.3 70B Versatile", default=True),
    ModelInfo("llama-3.1-8b-instant", "Llama 3.1 8B Instant"),
)

MISTRAL_LLM_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("mistral-small-latest", "Mistral Small", default=True),
    ModelInfo("mistral-large-latest", "Mistral Large"),
)

XAI_LLM_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("grok-4-1-fast-non-reasoning", "Grok 4.1 Fast (non-reasoning)", default=True),
    ModelInfo("grok-4-1-fast-reasoning", "Grok 4.1 Fast (reasoning)"),
)

XAI_REALTIME_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("grok-voice-latest", "Grok Voice", default=True),
)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """A vendor a BYOK key can be stored for: what it is used for, and its models.

    ``categories[0]`` is the main use (the one the reference's single
    ``category`` field names); ``models`` maps each category to its models.
    """

    id: str
    name: str
    categories: tuple[str, ...]
    docs_url: str
    models: tuple[tuple[str, tuple[ModelInfo, ...]], ...] = ()


#: Every BYOK provider, the five of the reference first (resources.md §9).
BYOK_PROVIDER_INFO: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        "deepgram",
        "Deepgram",
        ("stt",),
        "https://developers.deepgram.com/docs",
        (("stt", DEEPGRAM_STT_MODELS),),
    ),
    ProviderInfo(
        "openai",
        "OpenAI",
        ("llm", "stt", "tts"),
        "https://platform.openai.com/docs/api-reference",
        (("llm", OPENAI_LLM_MODELS), ("stt", OPENAI_STT_MODELS), ("tts", OPENAI_TTS_MODELS)),
    ),
    ProviderInfo(
        "elevenlabs",
        "ElevenLabs",
        ("tts",),
        "https://elevenlabs.io/docs/api-reference/text-to-speech",
        (("tts", ELEVENLABS_TTS_MODELS),),
    ),
    ProviderInfo(
        "xai",
        "xAI",
        ("realtime", "llm"),
        "https://docs.x.ai/docs",
        (("realtime", XAI_REALTIME_MODELS), ("llm", XAI_LLM_MODELS)),
    ),
    ProviderInfo("resend", "Resend", ("email",), "https://resend.com/docs/api-reference"),
    ProviderInfo(
        "anthropic",
        "Anthropic",
        ("llm",),
        "https://docs.anthropic.com/en/api/messages",
        (("llm", ANTHROPIC_LLM_MODELS),),
    ),
    ProviderInfo(
        "groq",
        "Groq",
        ("llm",),
        "https://console.groq.com/docs/api-reference",
        (("llm", GROQ_LLM_MODELS),),
    ),
    ProviderInfo(
        "mistral",
        "Mistral AI",
        ("llm",),
        "https://docs.mistral.ai/api",
        (("llm", MISTRAL_LLM_MODELS),),
    ),
    ProviderInfo(
        "cartesia",
        "Cartesia",
        ("tts",),
        "https://docs.cartesia.ai/api-reference",
        (("tts", CARTESIA_TTS_MODELS),),
    ),
    # self-hosted servers: the models are whatever the organization's server serves
    ProviderInfo("ollama", "Ollama", ("llm",), "https://docs.ollama.com/api/openai-compatibility"),
    ProviderInfo(
        "openai-compatible",
        "OpenAI-compatible server (vLLM, llama.cpp server, LiteLLM...)",
        ("llm",),
        "https://platform.openai.com/docs/api-reference/chat",
    ),
)


def default_model(models: tuple[ModelInfo, ...]) -> str:
    """The id of the model marked default (the first one if none is)."""
    for model in models:
        if model.default:
            return model.id
    return models[0].id
