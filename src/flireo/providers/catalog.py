"""Static facts about the speech vendors, as their documentation states them.

No I/O: the ``/voices`` and ``/byok/config`` endpoints read these to describe
what a vendor offers without calling it. Voice libraries that belong to a
customer (ElevenLabs, Cartesia) are fetched live with each vendor module's
``list_voices``; only documented built-in voices are listed here.

Sources (read 2026): OpenAI API reference "Create speech" (voices, the 24 kHz
``pcm`` format) and "Create transcription" (models); Deepgram "Models &
Languages" and "Keyterm Prompting" (nova-3 only); ElevenLabs "Models" and the
stream-input websocket reference (``output_format`` values); Cartesia "TTS
models" (sonic family). OpenAI does not document voice genders; they are left
``None`` rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CARTESIA_TTS_MODELS",
    "DEEPGRAM_STT_MODELS",
    "ELEVENLABS_TTS_MODELS",
    "OPENAI_STT_MODELS",
    "OPENAI_TTS_MODELS",
    "OPENAI_TTS_SAMPLE_RATE",
    "OPENAI_TTS_VOICES",
    "SPEECH_MODELS",
    "ModelInfo",
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


def default_model(models: tuple[ModelInfo, ...]) -> str:
    """The id of the model marked default (the first one if none is)."""
    for model in models:
        if model.default:
            return model.id
    return models[0].id
