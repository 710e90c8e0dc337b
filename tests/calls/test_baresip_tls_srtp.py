"""baresip (a real softphone, Debian package ``baresip-core``) with mandatory SRTP
(SDES) over SIP/TLS: it calls the agent's number on our TLS listener, and we call
it through a ``transport: tls``, ``srtp: mandatory`` trunk. Each call connects,
media flows both ways encrypted (RTP/SAVP; every packet we took authenticated;
baresip decrypted and decoded ours, no decrypt failure in its log; the packets
on the loopback wire are not plain RTP), and a BYE ends it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from flireo.media.g711 import alaw_decode, ulaw_decode
from flireo.services.call_lifecycle import CallLifecycle
from flireo.services.call_runner import CallRunner
from flireo.services.container import Services
from flireo.services.sip_gateway import SipGateway
from flireo.store.tables import Call
from flireo.telephony.rtp.session import RtpSession
from flireo.telephony.sip.tls import client_context, server_context
from flireo.telephony.sip.ua import SipEndpoint
from tests.api.conftest import Org
from tests.calls.phone import NUMBER, SentAudio, agent_with_number
from tests.conftest import skip_or_fail
from tests.fakes.openai_chat import FakeOpenAI
from tests.telephony.sipp import free_port
from tests.telephony.tls_certs import CertFiles, self_signed

pytestmark = pytest.mark.sipp

BARESIP = shutil.which("baresip") or "/usr/bin/baresip"
MODULES = Path("/usr/lib/baresip/modules")


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the API suite covers PostgreSQL; these calls are about SIP/TLS/SRTP


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return self_signed(tmp_path / "certs")


@dataclass
class Baresip:
    """One headless baresip: config dir, SIP port (TLS on port + 1), ctrl_tcp."""

    home: Path
    sip_port: int
    ctrl_port: int
    process: asyncio.subprocess.Process | None = None
    output: bytearray = field(default_factory=bytearray)
    _reader: asyncio.Task[None] | None = None

    @property
    def tls_port(self) -> int:
        return self.sip_port + 1  # baresip listens for TLS one above sip_listen

    @property
    def log(self) -> str:
        return self.output.decode(errors="replace")

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            BARESIP,
            "-f",
            str(self.home),
            "-v",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        for _ in range(100):  # ready once ctrl_tcp accepts
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"baresip did not start:\n{self.log}")

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(4096):
            self.output += chunk

    async def command(self, command: str, params: str = "") -> None:
        """A ctrl_tcp command (a JSON netstring)."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        _, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        writer.write(str(len(body)).encode() + b":" + body + b",")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    async def wait_for(self, text: str, within: float = 15) -> None:
        for _ in range(int(within / 0.05)):
            if text in self.log:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"baresip never said {text!r}:\n{self.log[-4000:]}")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader

    def decoded_audio(self) -> np.ndarray:
        """What baresip decoded from our stream (sndfile's ``-dec`` dump)."""
        files = sorted((self.home / "snd").glob("*dec*.wav"))
        assert files, f"no decoded audio dump:\n{self.log[-3000:]}"
        with wave.open(str(files[-1])) as w:
            return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)


def baresip_home(tmp_path: Path, certs: CertFiles, account: str) -> Baresip:
    home = tmp_path / "baresip"
    (home / "snd").mkdir(parents=True)
    sip_port, ctrl_port = free_port(), free_port()
    # the speaker: a 440 Hz tone; the "loudspeaker": nothing (aubridge without a
    # source), while sndfile keeps what was decoded
    config = f"""
poll_method epoll
sip_listen 127.0.0.1:{sip_port}
sip_certificate {certs.combined}
sip_cafile {certs.cert}
net_interface 127.0.0.1
call_local_timeout 30
audio_player aubridge,nil
audio_source ausine,440
ausrc_srate 48000
ausrc_channels 2
audio_alert aubridge,nil
rtp_stats yes
module_path {MODULES}
module g711.so
module ausine.so
module aubridge.so
module sndfile.so
module srtp.so
module_tmp account.so
module_app ctrl_tcp.so
module_app menu.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
snd_path {home / "snd"}
"""
    (home / "config").write_text(config)
    (home / "accounts").write_text(account + "\n")
    (home / "contacts").write_text("")
    return Baresip(home, sip_port, ctrl_port)


@pytest.fixture
async def baresip_ready() -> None:
    if not os.access(BARESIP, os.X_OK) or not (MODULES / "srtp.so").exists():
        skip_or_fail("baresip is not installed (Debian package baresip-core)")


class Tap:
    """Every UDP datagram on loopback to or from ``ports`` (a raw packet socket:
    root only); None when it cannot be opened."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.packets: list[tuple[int, int, bytes]] = []  # (src port, dst port, payload)
        with contextlib.suppress(OSError, AttributeError):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
            sock.bind(("lo", 0))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            sock.setblocking(False)
            self.sock = sock
            asyncio.get_running_loop().add_reader(sock, self.drain)

    def drain(self) -> None:
        if self.sock is None:
            return
        while True:
            try:
                frame = self.sock.recv(65535)
            except BlockingIOError:
                return
            ip = frame[14:]
            if len(ip) < 28 or ip[9] != 17:  # UDP only
                continue
            ihl = (ip[0] & 0x0F) * 4
            src, dst, length = struct.unpack_from("!HHH", ip, ihl)
            if len(self.packets) < 20_000:
                self.packets.append((src, dst, ip[ihl + 8 : ihl + length]))

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock)
            self.sock.close()


@asynccontextmanager
async def tls_gateway(
    services: Services, certs: CertFiles, sent: SentAudio | None = None
) -> AsyncIterator[SipGateway]:
    lifecycle = CallLifecycle(services.db, services.settings, services.clock)
    runner = CallRunner(services, lifecycle)
    endpoint = SipEndpoint(
        host="127.0.0.1",
        port=0,
        user_agent="Flireo-test",
        t1=0.1,
        tls_server=server_context(certs.cert, certs.key),
        tls_client=client_context(certs.cert),
        tls_port=0,
    )
    gw = SipGateway(
        services,
        lifecycle,
        runner,
        endpoint=endpoint,
        rtp_host="127.0.0.1",
        on_rtp_sent=sent.record if sent is not None else None,
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def live_rtp(gw: SipGateway, within: float = 15) -> tuple[str, RtpSession]:
    """The answered call's id and media; its signalling runs over TLS."""
    for _ in range(int(within / 0.05)):
        for call_id, leg in gw.legs.items():
            assert leg.dialog.peer.transport == "TLS"
            return call_id, leg.rtp
        await asyncio.sleep(0.05)
    raise AssertionError("no call was answered")


async def agent_spoke(sent: SentAudio, call_id: str, within: float = 30) -> None:
    """Until a second of the agent's speech went out (the greeting)."""
    for _ in range(int(within / 0.1)):
        loud = 0
        for packet in sent.packets[call_id]:
            if packet.payload_type in (0, 8):
                decode = ulaw_decode if packet.payload_type == 0 else alaw_decode
                pcm = np.frombuffer(decode(packet.payload), "<i2").astype(float)
                loud += bool(np.sqrt(np.mean(pcm**2)) > 300)
        if loud >= 50:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the agent never spoke")


async def finished(services: Services, call_id: str, within: float = 20) -> Call:
    for _ in range(int(within / 0.05)):
        async with services.db.read() as s:
            call = (await s.execute(select(Call).where(Call.id == call_id))).scalar_one()
        if call.status in ("ended", "failed"):
            return call
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} never ended")


def check_encrypted_media(rtp: RtpSession, tap: Tap) -> None:
    """While the call runs: our side of the media, and the wire."""
    stats = rtp.stats()
    assert rtp.srtp is not None, "the call's media is not SRTP"
    # baresip → us: authenticated SRTP (plain RTP would fail and be counted)
    assert stats.packets_received > 50, stats
    assert rtp.srtp.auth_failures == 0
    assert stats.packets_sent > 50
    if tap.sock is None:
        assert os.geteuid() != 0, "root can open a packet socket on lo"
        return
    tap.drain()
    port = rtp.local_port
    ours = [p for src, dst, p in tap.packets if port in (src, dst) and len(p) >= 12]
    assert len(ours) > 50
    # SRTP: the RTP header stays, the payload is ciphertext plus a 10-byte tag;
    # plain G.711 of a tone or of speech would repeat byte values heavily
    for payload in ours[:200]:
        assert payload[0] >> 6 == 2
        assert len(payload) == 12 + 160 + 10, len(payload)
    body = np.frombuffer(b"".join(p[12:-10] for p in ours[:200]), np.uint8)
    counts = np.bincount(body, minlength=256) / len(body)
    entropy = -(counts[counts > 0] * np.log2(counts[counts > 0])).sum()
    assert entropy > 7.5, f"payload entropy {entropy:.2f} bits/byte: not encrypted"


def check_baresip_heard_us(softphone: Baresip) -> None:
    """After the call: baresip decrypted (no failure logged) and decoded our audio."""
    assert "SRTP is Enabled" in softphone.log
    assert "failed to decrypt" not in softphone.log
    pcm = softphone.decoded_audio()
    assert len(pcm) > 8000, "baresip decoded less than a second of our stream"
    assert np.sqrt(np.mean(pcm**2)) > 300, "what baresip decoded is silence"


async def test_baresip_calls_in_over_tls_with_mandatory_srtp(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    certs: CertFiles,
    baresip_ready: None,
) -> None:
    await agent_with_number(
        api,
        fake_openai,
        first_message="Hello, this is Anna. How can I help?",
        trunk={"port": 15060},  # the number's carrier (not dialled here)
    )
    softphone = baresip_home(
        tmp_path,
        certs,
        "<sip:caller@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;"
        "answermode=manual;audio_codecs=pcmu",
    )
    tap = Tap()
    sent = SentAudio()
    async with tls_gateway(services, certs, sent) as gw:
        await softphone.start()
        try:
            assert gw.endpoint.tls_port is not None
            await softphone.command(
                "dial", f"sip:{NUMBER}@127.0.0.1:{gw.endpoint.tls_port};transport=tls"
            )
            call_id, rtp = await live_rtp(gw)
            await agent_spoke(sent, call_id)  # the greeting; baresip's tone comes in
            check_encrypted_media(rtp, tap)
            await softphone.command("hangup")
            call = await finished(services, call_id)
        finally:
            await softphone.stop()
            tap.close()
    check_baresip_heard_us(softphone)
    assert (call.status, call.ended_reason, call.direction) == (
        "ended",
        "customer-ended-call",
        "inbound",
    )


async def test_we_call_baresip_through_a_tls_trunk_with_mandatory_srtp(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    certs: CertFiles,
    baresip_ready: None,
) -> None:
    softphone = baresip_home(
        tmp_path,
        certs,
        "<sip:+31612345678@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;"
        "answermode=auto;audio_codecs=pcmu",
    )
    agent_id, _ = await agent_with_number(
        api,
        fake_openai,
        first_message="Hello, this is Anna calling.",
        trunk={"port": softphone.tls_port, "transport": "tls", "srtp": "mandatory"},
    )
    tap = Tap()
    sent = SentAudio()
    async with tls_gateway(services, certs, sent) as gw:
        services.dialer = gw
        await softphone.start()
        try:
            r = await api.post(
                "/calls/outbound", json={"agent_id": agent_id, "destination": "+31612345678"}
            )
            assert r.status_code in (200, 201), r.text
            call_id = str(r.json()["call_id"])
            _, rtp = await live_rtp(gw)
            await softphone.wait_for("SRTP is Enabled")
            await agent_spoke(sent, call_id)
            check_encrypted_media(rtp, tap)
            r = await api.post(f"/calls/{call_id}/control", json={"type": "end-call"})
            assert r.status_code == 200, r.text
            call = await finished(services, call_id)
            await softphone.wait_for("session closed")  # our BYE reached it
        finally:
            await softphone.stop()
            tap.close()
    check_baresip_heard_us(softphone)
    assert (call.status, call.direction) == ("ended", "outbound")
    assert call.ended_reason == "manually-ended"


async def test_plain_rtp_is_refused_when_srtp_is_mandatory(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    certs: CertFiles,
    baresip_ready: None,
) -> None:
    """``FLIREO_SIP_SRTP=mandatory``: a caller offering plain RTP (even over TLS)
    gets 488 and the call record says why."""
    services.settings.sip_srtp = "mandatory"
    await agent_with_number(api, fake_openai, trunk={"port": 15060})
    softphone = baresip_home(
        tmp_path,
        certs,
        "<sip:caller@127.0.0.1;transport=tls>;regint=0;answermode=manual;audio_codecs=pcmu",
    )
    async with tls_gateway(services, certs) as gw:
        await softphone.start()
        try:
            await softphone.command(
                "dial", f"sip:{NUMBER}@127.0.0.1:{gw.endpoint.tls_port};transport=tls"
            )
            await softphone.wait_for("488")
        finally:
            await softphone.stop()
        async with services.db.read() as s:
            call = (await s.execute(select(Call))).scalar_one()
    assert call.status == "failed"
    assert call.ended_reason == "call-start-error-incompatible-sdp"
    assert "mandatory" in (call.error or "")
