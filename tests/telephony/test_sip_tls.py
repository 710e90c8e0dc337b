"""SIP over TLS between two of our endpoints on loopback: the listener on its own
port, ``transport=tls`` and ``sips:`` targets, Via/Contact naming TLS, BYE back
on the same connection, and a certificate the caller does not trust refused."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flireo.telephony.sip import sdp
from flireo.telephony.sip.routing import next_hop
from flireo.telephony.sip.tls import TlsConfigError, client_context, contexts, server_context
from flireo.telephony.sip.ua import DialFailed, Dialog, IncomingCall, SipEndpoint
from flireo.telephony.sip.uri import SipUri
from tests.telephony.tls_certs import CertFiles, self_signed

OFFER = sdp.build(host="127.0.0.1", port=40000, session_id=1, version=1, codecs=(0,), dtmf_pt=101)


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return self_signed(tmp_path / "certs")


@pytest.fixture
async def server(certs: CertFiles) -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint(
        host="127.0.0.1",
        port=0,
        t1=0.05,
        tls_server=server_context(certs.cert, certs.key),
        tls_port=0,
    )
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


async def caller(ca: Path | None, *, verify: bool = True) -> SipEndpoint:
    ep = SipEndpoint(
        host="127.0.0.1", port=0, t1=0.05, tls_client=client_context(ca, verify=verify)
    )
    await ep.start()
    return ep


def test_tls_next_hop_and_default_port() -> None:
    assert next_hop(SipUri.parse("sips:alice@example.com")).transport == "TLS"
    assert next_hop(SipUri.parse("sips:alice@example.com")).port == 5061
    hop = next_hop(SipUri.parse("sip:bob@192.0.2.1;transport=tls"))
    assert (hop.transport, hop.port) == ("TLS", 5061)
    assert next_hop(SipUri.parse("sip:bob@192.0.2.1:5071;transport=TLS")).port == 5071


def test_bad_certificate_settings_are_clear(tmp_path: Path, certs: CertFiles) -> None:
    with pytest.raises(TlsConfigError, match="both"):
        contexts(certs.cert, None, None, verify=True)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TlsConfigError, match="certificate"):
        server_context(tmp_path / "junk.pem", certs.key)
    server, client = contexts(None, None, None, verify=True)
    assert server is None
    assert client.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("scheme", ["sip-transport-tls", "sips"])
async def test_call_over_tls_answered_and_hung_up(
    server: SipEndpoint, certs: CertFiles, scheme: str
) -> None:
    assert server.tls_port is not None
    assert server.tls_port != server.port
    calls: asyncio.Queue[tuple[IncomingCall, Dialog]] = asyncio.Queue()

    async def answer(call: IncomingCall) -> None:
        dialog = await call.answer(OFFER)
        await calls.put((call, dialog))

    server.on_invite = answer
    ep = await caller(certs.cert)
    try:
        target = (
            f"sip:+15550001@127.0.0.1:{server.tls_port};transport=tls"
            if scheme != "sips"
            else f"sips:+15550001@127.0.0.1:{server.tls_port}"
        )
        dialog = await asyncio.wait_for(
            ep.invite(target, from_uri="sip:us@127.0.0.1", sdp_offer=OFFER), 10
        )
        incoming, theirs = await asyncio.wait_for(calls.get(), 5)
        assert incoming.flow.transport == "TLS"
        via = incoming.request.headers.get("Via") or ""
        assert via.startswith("SIP/2.0/TLS ")
        contact = incoming.request.headers.get("Contact") or ""
        assert "transport=tls" in contact
        assert dialog.peer.transport == "TLS"
        # the callee's BYE goes back over the caller's TLS connection
        await theirs.bye()
        await asyncio.wait_for(dialog.ended.wait(), 5)
    finally:
        await ep.stop()


async def test_untrusted_certificate_fails_the_call(server: SipEndpoint, tmp_path: Path) -> None:
    other = self_signed(tmp_path / "other")  # a CA that did not sign the server's cert
    ep = await caller(other.cert)
    try:
        with pytest.raises(DialFailed, match="certificate verify failed"):
            await asyncio.wait_for(
                ep.invite(
                    f"sip:+15550001@127.0.0.1:{server.tls_port};transport=tls",
                    from_uri="sip:us@127.0.0.1",
                    sdp_offer=OFFER,
                    timeout_s=5,
                ),
                10,
            )
    finally:
        await ep.stop()


async def test_tls_dial_without_tls_configured_is_refused() -> None:
    ep = SipEndpoint(host="127.0.0.1", port=0, t1=0.05)
    await ep.start()
    try:
        with pytest.raises(DialFailed, match="TLS"):
            await ep.invite(
                "sips:+15550001@127.0.0.1:5061", from_uri="sip:us@127.0.0.1", sdp_offer=OFFER
            )
    finally:
        await ep.stop()
