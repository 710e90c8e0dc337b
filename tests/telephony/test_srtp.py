"""SRTP with SDES keys: ``a=crypto`` parsing, the SDP offer/answer rules, and two
RTP sessions on loopback whose packets are encrypted on the wire (checked at a
relay between them) and decrypted at each end; forged or plain packets are refused."""

from __future__ import annotations

import asyncio
import base64
from typing import cast

import numpy as np
import pylibsrtp
import pytest

from flireo.telephony.rtp import srtp
from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.rtp.session import RtpSession
from flireo.telephony.sip import sdp

KEY = bytes(range(30))
KEY_B64 = base64.b64encode(KEY).decode()


def test_crypto_lines_we_can_and_cannot_use() -> None:
    good = srtp.parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}")
    assert good == srtp.CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", KEY)
    assert srtp.parse_crypto(good.line()) == good
    assert srtp.parse_crypto(f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|2^31") is not None
    for unusable in (
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4",  # an MKI
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} UNENCRYPTED_SRTP",  # weakened
        f"1 F8_128_HMAC_SHA1_80 inline:{KEY_B64}",  # a suite we lack
        "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",  # 5-byte key
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
        f"1 AES_CM_128_HMAC_SHA1_80 key:{KEY_B64}",
        "garbage",
        "",
    ):
        assert srtp.parse_crypto(unusable) is None, unusable


def offer_sdp(proto: str, crypto: tuple[srtp.CryptoAttribute, ...]) -> sdp.AudioMedia:
    body = sdp.build(
        host="127.0.0.1",
        port=40000,
        session_id=1,
        version=1,
        codecs=(0, 8),
        dtmf_pt=101,
        proto=proto,
        crypto=crypto,
    )
    return sdp.parse_audio(body)


def test_answering_rules() -> None:
    ours = srtp.offer_lines()
    secure = offer_sdp("RTP/SAVP", ours)
    assert secure.secure
    assert [c.suite for c in secure.crypto] == list(srtp.PREFERRED)
    answer = sdp.negotiate(secure)
    assert answer.srtp is not None
    assert answer.crypto is not None
    assert answer.proto == "RTP/SAVP"
    assert answer.crypto.tag == 1
    assert answer.srtp.remote_key == ours[0].key
    assert answer.srtp.local_key != ours[0].key
    # best-effort SRTP: RTP/AVP with crypto lines is answered encrypted too
    assert sdp.negotiate(offer_sdp("RTP/AVP", ours)).srtp is not None
    # a plain offer: plain answer, unless SRTP is mandatory
    assert sdp.negotiate(offer_sdp("RTP/AVP", ())).srtp is None
    with pytest.raises(sdp.SdpNegotiationError, match="mandatory"):
        sdp.negotiate(offer_sdp("RTP/AVP", ()), srtp="mandatory")
    # RTP/SAVP without a usable crypto line, or with SRTP off: 488
    with pytest.raises(sdp.SdpNegotiationError, match="crypto"):
        sdp.negotiate(offer_sdp("RTP/SAVP", ()))
    with pytest.raises(sdp.SdpNegotiationError, match="off"):
        sdp.negotiate(secure, srtp="off")
    assert sdp.negotiate(offer_sdp("RTP/AVP", ours), srtp="off").srtp is None


def test_reading_the_answer_to_our_srtp_offer() -> None:
    ours = srtp.offer_lines()
    theirs = srtp.CryptoAttribute.fresh(2, "AES_CM_128_HMAC_SHA1_32")
    answer = offer_sdp("RTP/SAVP", (theirs,))
    neg = sdp.accept_answer((0, 8, 101), answer, ours)
    assert neg.srtp == srtp.SrtpKeys("AES_CM_128_HMAC_SHA1_32", ours[1].key, theirs.key)
    with pytest.raises(sdp.SdpNegotiationError):  # a plain answer to an SRTP offer
        sdp.accept_answer((0, 8, 101), offer_sdp("RTP/AVP", ()), ours)
    with pytest.raises(sdp.SdpNegotiationError):  # a tag we never offered
        sdp.accept_answer(
            (0, 8, 101), offer_sdp("RTP/SAVP", (srtp.CryptoAttribute.fresh(7, theirs.suite),)), ours
        )
    with pytest.raises(sdp.SdpNegotiationError):  # SRTP answer to a plain offer
        sdp.accept_answer((0, 8, 101), answer)


class Relay(asyncio.DatagramProtocol):
    """Forwards between two RTP sessions and keeps every datagram it saw."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.ends: dict[int, tuple[str, int]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen.append(data)
        a, b = self.ends.values()
        if self.transport is not None:
            self.transport.sendto(data, b if addr == a else a)


def tone(seconds: float, hz: float = 440.0) -> bytes:
    t = np.arange(int(16_000 * seconds)) / 16_000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


async def test_media_is_encrypted_on_the_wire_and_decrypted_at_both_ends() -> None:
    offer_lines = srtp.offer_lines()
    offer = offer_sdp("RTP/SAVP", offer_lines)
    answered = sdp.negotiate(offer)  # B answers A's offer
    assert answered.srtp is not None
    assert answered.crypto is not None
    a_keys = sdp.accept_answer(
        (0, 8, 101), offer_sdp("RTP/SAVP", (answered.crypto,)), offer_lines
    ).srtp
    assert a_keys is not None
    loop = asyncio.get_running_loop()
    sent_by_a: list[RtpPacket] = []
    a = RtpSession(
        codec_pt=0,
        local_host="127.0.0.1",
        srtp=a_keys.context(),
        on_sent=lambda p, _late: sent_by_a.append(p),
    )
    b = RtpSession(codec_pt=0, local_host="127.0.0.1", srtp=answered.srtp.context())
    relay_transport, relay = await loop.create_datagram_endpoint(Relay, local_addr=("127.0.0.1", 0))
    try:
        relay_port = relay_transport.get_extra_info("sockname")[1]
        a_port, b_port = await a.bind(), await b.bind()
        relay.ends = {1: ("127.0.0.1", a_port), 2: ("127.0.0.1", b_port)}
        a.set_remote("127.0.0.1", relay_port)
        b.set_remote("127.0.0.1", relay_port)
        heard_by_b: list[bytes] = []
        heard_by_a: list[bytes] = []
        b.set_frame_sink(heard_by_b.append)
        a.set_frame_sink(heard_by_a.append)
        a.start()
        b.start()
        await a.send(tone(0.6))
        await b.send(tone(0.6, 1000.0))
        await asyncio.sleep(1.2)
        assert a.stats().packets_received > 10
        assert b.stats().packets_received > 10
        for heard, hz in ((heard_by_a, 1000.0), (heard_by_b, 440.0)):
            pcm = np.frombuffer(b"".join(heard), "<i2").astype(float)
            assert np.sqrt(np.mean(pcm**2)) > 1000  # not silence
            # the other side's tone, not ciphertext decoded as noise
            spectrum = np.abs(np.fft.rfft(pcm))
            peak_hz = float(np.argmax(spectrum[1:]) + 1) * 16_000 / len(pcm)
            assert abs(peak_hz - hz) < 20, peak_hz
        # on the wire: the 10-byte tag, and no payload as A sent it
        wire = {d[2:4]: d for d in relay.seen}  # by sequence number
        checked = 0
        for packet in sent_by_a:
            data = wire.get(packet.sequence.to_bytes(2, "big"))
            if data is None or data[8:12] != packet.ssrc.to_bytes(4, "big"):
                continue
            assert len(data) == 12 + len(packet.payload) + 10
            assert data[12:-10] != packet.payload
            checked += 1
        assert checked > 10
        assert a.srtp is not None
        assert b.srtp is not None
        assert a.srtp.auth_failures == 0
        assert b.srtp.auth_failures == 0
    finally:
        a.close()
        b.close()
        relay_transport.close()


async def test_plain_forged_and_replayed_packets_are_refused() -> None:
    loop = asyncio.get_running_loop()
    rx = srtp.SrtpContext("AES_CM_128_HMAC_SHA1_80", bytes(30), KEY)
    session = RtpSession(codec_pt=0, local_host="127.0.0.1", srtp=rx)
    port = await session.bind()
    sender, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    # the peer's side, straight on libsrtp with the key from its SDP line
    peer = pylibsrtp.Session(
        pylibsrtp.Policy(
            key=KEY,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
    )
    try:
        session.set_remote("127.0.0.1", sender.get_extra_info("sockname")[1])
        session.start()
        plain = RtpPacket(0, 1, 160, 0x1234, b"\xff" * 160).serialize()
        genuine = peer.protect(RtpPacket(0, 2, 320, 0x1234, b"\x7f" * 160).serialize())
        forged = bytearray(genuine)
        forged[20] ^= 1
        for data in (plain, bytes(forged), genuine, genuine):
            sender.sendto(data, ("127.0.0.1", port))
        await asyncio.sleep(0.2)
        stats = session.stats()
        assert stats.packets_received == 1  # the genuine one, once
        assert rx.auth_failures == 3  # plain, forged, replayed
    finally:
        session.close()
        sender.close()
