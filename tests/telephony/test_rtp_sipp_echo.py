"""A real far end: sipp echoes our RTP (``-rtp_echo``); our speech and our digits
come back through its socket and our whole receive path."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest

from flireo.telephony.rtp.session import RtpSession
from tests.conftest import skip_or_fail
from tests.telephony.rtp_helpers import until

pytestmark = pytest.mark.sipp


def free_udp_port(pair: bool = False) -> int:
    """A free UDP port on 127.0.0.1 (and, with ``pair``, the one two above it too:
    sipp also echoes on media port + 2)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1]) & ~1
        if port > 65_000:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
                a.bind(("127.0.0.1", port))
                if pair:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                        b.bind(("127.0.0.1", port + 2))
        except OSError:
            continue
        return port
    raise RuntimeError("no free UDP port")


@pytest.fixture
async def sipp_echo() -> AsyncIterator[int]:
    """sipp as a UAS that echoes RTP; yields its media port."""
    sipp = shutil.which("sipp")
    if sipp is None:
        skip_or_fail("sipp is not installed")
        raise AssertionError("unreachable")
    media = free_udp_port(pair=True)
    process = await asyncio.create_subprocess_exec(
        sipp,
        "-sn",
        "uas",
        "-rtp_echo",
        "-mp",
        str(media),
        "-p",
        str(free_udp_port()),
        "-i",
        "127.0.0.1",
        "-nostdin",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await until(lambda: _bound(media), within=10, what="sipp's media port")
        yield media
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def test_sipp_echoes_our_paced_speech_and_digits_back(sipp_echo: int) -> None:
    digits: list[str] = []
    session = RtpSession(local_host="127.0.0.1", dtmf_pt=101)
    session.on_dtmf = digits.append
    await session.bind()
    session.set_remote("127.0.0.1", sipp_echo)
    frames: list[bytes] = []

    async def read() -> None:
        async for frame in session.frames():
            frames.append(frame)

    reader = asyncio.create_task(read())
    t = np.arange(16_000) / 16_000
    await session.send((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    session.start()
    try:
        await until(lambda: session.queued_samples == 0, what="speech sent")
        await asyncio.wait_for(session.send_dtmf("5#"), 10)
        await until(lambda: digits == ["5", "#"], what="the digits echoed")
        await asyncio.sleep(0.3)
    finally:
        await session.aclose()
        await reader
    stats = session.stats()
    assert stats.packets_received >= stats.packets_sent - 5  # a few may be in flight at close
    assert stats.packets_lost == 0
    pcm = np.frombuffer(b"".join(frames), dtype="<i2")
    assert np.count_nonzero(np.abs(pcm) > 1000) > 0.8 * 16_000  # the second of tone came back
