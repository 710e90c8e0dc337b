"""Fixtures for the telephony tests: a started SipEndpoint and a sipp launcher."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flireo.telephony.sip.ua import SipEndpoint
from tests.conftest import skip_or_fail
from tests.telephony.sipp import SIPP, Sipp


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    if not os.access(SIPP, os.X_OK):
        skip_or_fail("sipp is not installed (Debian package sip-tester)")
    launcher = Sipp(tmp_path)
    try:
        yield launcher
    finally:
        await launcher.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint(host="127.0.0.1", port=0, user_agent="Flireo-test")
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()
