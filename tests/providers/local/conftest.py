"""Load each offline model once per test session and make the shared speech."""

from __future__ import annotations

import asyncio

import pytest

from flireo.providers.stt.local_whisper import load_whisper_model
from flireo.providers.tts.local_piper import load_piper_voice
from tests.speech import speak

APPOINTMENT = "I would like to book an appointment for tomorrow morning."


@pytest.fixture(scope="session", autouse=True)
def _models_loaded() -> None:
    load_piper_voice("joe-us")
    load_whisper_model()


@pytest.fixture(scope="session")
def appointment_pcm() -> bytes:
    """APPOINTMENT spoken by Piper, 16 kHz s16le."""
    return asyncio.run(speak(APPOINTMENT))
