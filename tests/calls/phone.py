"""Helpers for whole-call tests: a started gateway, audio files sipp can stream,
and the agent audio taken from the RTP packets the gateway sent."""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from flireo.media.g711 import alaw_decode, ulaw_decode, ulaw_encode
from flireo.media.resample import resample_all
from flireo.services.call_lifecycle import CallLifecycle
from flireo.services.call_runner import CallRunner
from flireo.services.container import Services
from flireo.services.sip_gateway import SipGateway
from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.sip.ua import SipEndpoint
from tests.fakes.openai_chat import FakeOpenAI

NUMBER = "+31850835037"


def ulaw_wav(pcm16k: bytes, path: Path) -> Path:
    """``pcm16k`` as an 8 kHz G.711 μ-law WAV (what sipp's ``rtp_stream`` plays)."""
    data = ulaw_encode(resample_all(pcm16k, 16_000, 8_000))
    fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)
    fact = struct.pack("<I", len(data))
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@dataclass
class SentAudio:
    """RTP the gateway sent, per call: decoded back to 8 kHz PCM."""

    packets: dict[str, list[RtpPacket]] = field(default_factory=lambda: defaultdict(list))

    def record(self, call_id: str, packet: RtpPacket) -> None:
        self.packets[call_id].append(packet)

    def pcm16k(self, call_id: str) -> bytes:
        """The speech payloads (PCMU/PCMA) in sequence order, at 16 kHz."""
        pcm = []
        for p in self.packets[call_id]:
            if p.payload_type == 0:
                pcm.append(ulaw_decode(p.payload))
            elif p.payload_type == 8:
                pcm.append(alaw_decode(p.payload))
        return resample_all(b"".join(pcm), 8_000, 16_000)


@asynccontextmanager
async def gateway(
    services: Services, *, sent: SentAudio | None = None
) -> AsyncIterator[SipGateway]:
    lifecycle = CallLifecycle(services.db, services.settings, services.clock)
    runner = CallRunner(services, lifecycle)
    gw = SipGateway(
        services,
        lifecycle,
        runner,
        endpoint=SipEndpoint(host="127.0.0.1", port=0, user_agent="Flireo-test", t1=0.1),
        rtp_host="127.0.0.1",
        on_rtp_sent=sent.record if sent is not None else None,
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def agent_with_number(
    api: httpx.AsyncClient,
    fake: FakeOpenAI,
    *,
    first_message: str | None = "Hello, this is Anna.",
    trunk: dict[str, object] | None = None,
    webhook_url: str | None = "https://hooks.example.com/flireo",
) -> tuple[str, str]:
    """(agent id, trunk id) for an agent on the fake LLM, answering ``NUMBER``."""
    r = await api.post("/byok", json={"provider": "openai", "api_key": fake.api_key})
    assert r.status_code in (200, 201), r.text
    r = await api.post(
        "/agents",
        json={
            "name": "Front desk",
            "first_message": first_message,
            "stt_config": {"provider": "whisper", "language": "en"},
            "llm_config": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake.url,
                "messages": [{"role": "system", "content": "You are a receptionist."}],
            },
            "tts_config": {"provider": "piper"},
            "webhook_url": webhook_url,
            "webhook_events": ["status-update", "end-of-call-report"],
        },
    )
    assert r.status_code == 201, r.text
    agent_id = str(r.json()["agent"]["id"])
    r = await api.post(
        "/sip-trunks", json={"name": "carrier", "host": "127.0.0.1", **(trunk or {})}
    )
    assert r.status_code == 201, r.text
    trunk_id = str(r.json()["sip_trunk"]["id"])
    r = await api.post(
        "/numbers",
        json={
            "phone_number": NUMBER,
            "name": "Main",
            "agent_id": agent_id,
            "transfer_trunk_id": trunk_id,
        },
    )
    assert r.status_code == 201, r.text
    return agent_id, trunk_id
