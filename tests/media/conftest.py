"""Real speech for the media tests, made once per test session."""

from __future__ import annotations

import asyncio

import pytest

from flireo.media.silero import silero_session
from tests.speech import speak

APPOINTMENT = "I would like to book an appointment for tomorrow morning."
BILLING = "Can you transfer me to billing please?"


@pytest.fixture(scope="session", autouse=True)
def _silero_loaded() -> None:
    silero_session()


@pytest.fixture(scope="session")
def appointment_pcm() -> bytes:
    """APPOINTMENT spoken by Piper, 16 kHz s16le."""
    return asyncio.run(speak(APPOINTMENT))


@pytest.fixture(scope="session")
def billing_pcm() -> bytes:
    """BILLING spoken by Piper, 16 kHz s16le."""
    return asyncio.run(speak(BILLING))
