"""A call that fails while it is being set up ends exactly once (issue 14 item 5):
terminal status, end-of-call report, usage record, never left ``ringing`` and
counted in ``active_calls``. Each failure is a real one: the configured RTP port
range exhausted, an SDP offer without a common codec, a database that refuses
the write, a vendor without a key, an assistant-request server that errors.

The far end is our own SIP user agent over loopback (it can offer any SDP)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from flireo.services.container import Services
from flireo.settings import Settings
from flireo.store.tables import Call, UsageLog
from flireo.telephony.sip import sdp
from flireo.telephony.sip.outgoing import DialFailed
from flireo.telephony.sip.ua import Dialog, SipEndpoint
from tests.api.conftest import Org
from tests.calls.phone import NUMBER, agent_with_number, gateway
from tests.calls.test_inbound_sipp import webhook_trail
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import ServerThread, serve
from tests.fakes.webhook_receiver import WebhookReceiver

#: the trunk is never reached here (not on our own SIP port: that would be a loop)
TRUNK: dict[str, object] = {"port": 5999}
FAILED_TRAIL = ["status-update:ringing", "status-update:ended-with-error", "end-of-call-report"]


def _free_even_port() -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        if port % 2 == 0 and port + 1 <= 65_535:
            return int(port)
    raise AssertionError("no even port")


#: a one-port-pair RTP range, so a single held port exhausts it
RTP_PORT = _free_even_port()


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the failures are SIP-side; the store triggers are SQLite syntax


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        rate_limit_per_minute=100_000,
        allow_private_webhooks=True,
        initial_minutes_balance=100,
        rtp_port_min=RTP_PORT,
        rtp_port_max=RTP_PORT + 1,
    )


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ServerThread]]:
    r = WebhookReceiver()
    with serve(r.app()) as srv:
        yield r, srv


def offer(*codecs: int) -> bytes:
    return sdp.build(
        host="127.0.0.1", port=40_000, session_id=1, version=1, codecs=codecs, dtmf_pt=101
    )


#: G.729 only: nothing we speak
G729_ONLY = (
    b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=sendrecv\r\n"
)


async def call_in(port: int, body: bytes) -> Dialog | DialFailed:
    """INVITE the gateway's number; the answered dialog or the refusal."""
    endpoint = SipEndpoint(host="127.0.0.1", port=0, user_agent="test-caller", t1=0.1)
    await endpoint.start()
    try:
        try:
            dialog = await endpoint.invite(
                f"sip:{NUMBER}@127.0.0.1:{port}",
                from_uri="sip:+31612345678@127.0.0.1",
                sdp_offer=body,
                timeout_s=15,
            )
        except DialFailed as exc:
            return exc
        await dialog.bye()
        return dialog
    finally:
        await endpoint.stop()


async def only_call(services: Services) -> Call:
    for _ in range(200):
        async with services.db.read() as s:
            calls = list((await s.execute(select(Call))).scalars())
        if calls and calls[0].status in ("ended", "failed", "rejected"):
            assert len(calls) == 1
            return calls[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the call never ended: {[(c.id, c.status) for c in calls]}")


async def assert_ended_once(
    services: Services, api: httpx.AsyncClient, call: Call, trail: list[str] = FAILED_TRAIL
) -> None:
    assert await webhook_trail(services, call.id) == trail
    async with services.db.read() as s:
        logs = (
            await s.execute(
                select(func.count()).select_from(UsageLog).where(UsageLog.call_id == call.id)
            )
        ).scalar_one()
    assert logs == 1
    assert (await api.get("/account")).json()["active_calls"] == 0


async def assistant_request(api: httpx.AsyncClient, agent_id: str, srv: ServerThread) -> None:
    r = await api.patch(
        f"/agents/{agent_id}",
        json={
            "webhook_url": f"{srv.url}/hook",
            "webhook_events": ["assistant-request", "status-update", "end-of-call-report"],
        },
    )
    assert r.status_code == 200, r.text


# --- inbound ---------------------------------------------------------------------------
async def test_rtp_ports_exhausted_refuses_with_503_and_ends_the_call(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await agent_with_number(api, fake_openai, first_message=None, trunk=TRUNK)
    async with gateway(services) as gw:
        assert gw.ports.capacity == 1
        held = gw.ports.acquire()  # the range's only pair, as a live call would hold it
        result = await call_in(gw.endpoint.port, offer(sdp.PCMU))
        assert isinstance(result, DialFailed), result
        assert result.status == 503
        call = await only_call(services)
        gw.ports.release(held)
    assert (call.status, call.ended_reason) == ("failed", "call-start-error-no-media-port")
    assert call.error is not None
    assert "media" in call.error
    await assert_ended_once(services, api, call)
    assert fake_openai.requests == []


async def test_an_offer_without_a_common_codec_is_488_and_ends_the_call(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await agent_with_number(api, fake_openai, first_message=None, trunk=TRUNK)
    async with gateway(services) as gw:
        result = await call_in(gw.endpoint.port, G729_ONLY)  # G.729 only
        assert isinstance(result, DialFailed), result
        assert result.status == 488
        call = await only_call(services)
    assert (call.status, call.ended_reason) == ("failed", "call-start-error-incompatible-sdp")
    await assert_ended_once(services, api, call)


async def test_a_database_fault_while_storing_the_overrides_ends_the_call(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    receiver: tuple[WebhookReceiver, ServerThread],
) -> None:
    hook, srv = receiver
    agent_id, _ = await agent_with_number(api, fake_openai, first_message=None, trunk=TRUNK)
    await assistant_request(api, agent_id, srv)
    hook.reply = {"assistant": {"firstMessage": "Hello from the override."}}
    async with services.db.transaction() as s:  # the store refuses exactly this write
        await s.execute(
            text(
                "CREATE TRIGGER refuse_overrides BEFORE UPDATE OF overrides ON calls "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END"
            )
        )
    async with gateway(services) as gw:
        result = await call_in(gw.endpoint.port, offer(sdp.PCMU))
        assert isinstance(result, DialFailed), result
        assert result.status == 500
        call = await only_call(services)
    assert (call.status, call.ended_reason) == ("failed", "call-start-error-database")
    assert call.error is not None
    assert "injected" in call.error
    assert len(hook.requests) >= 1  # the assistant-request went out
    await assert_ended_once(services, api, call)


async def test_a_vendor_without_a_key_is_503_and_ends_the_call(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    receiver: tuple[WebhookReceiver, ServerThread],
) -> None:
    hook, srv = receiver
    agent_id, _ = await agent_with_number(api, fake_openai, first_message=None, trunk=TRUNK)
    await assistant_request(api, agent_id, srv)
    # the assistant-request names a hosted transcriber the organization has no key for
    hook.reply = {"assistant": {"stt_config": {"provider": "deepgram", "language": "en"}}}
    async with gateway(services) as gw:
        result = await call_in(gw.endpoint.port, offer(sdp.PCMU))
        assert isinstance(result, DialFailed), result
        assert result.status == 503
        call = await only_call(services)
    assert call.status == "failed"
    assert call.ended_reason == "pipeline-error-deepgram-transcriber-missing-api-key"
    await assert_ended_once(services, api, call)


async def test_an_assistant_request_server_error_falls_back_to_the_stored_agent(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    receiver: tuple[WebhookReceiver, ServerThread],
) -> None:
    hook, srv = receiver
    agent_id, _ = await agent_with_number(api, fake_openai, first_message=None, trunk=TRUNK)
    await assistant_request(api, agent_id, srv)
    hook.script(500)
    async with gateway(services) as gw:
        result = await call_in(gw.endpoint.port, offer(sdp.PCMU))
        assert isinstance(result, Dialog), result  # answered with the stored agent
        call = await only_call(services)
    assert [r.status for r in hook.requests][:1] == [500]
    assert (call.status, call.ended_reason) == ("ended", "customer-ended-call")
    await assert_ended_once(
        services,
        api,
        call,
        [
            "status-update:ringing",
            "status-update:in-progress",
            "status-update:ended",
            "end-of-call-report",
        ],
    )


# --- outbound --------------------------------------------------------------------------
async def dial(api: httpx.AsyncClient, agent_id: str) -> str:
    r = await api.post(
        "/calls/outbound", json={"agent_id": agent_id, "destination": "+31612345678"}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["call_id"])


async def test_outbound_rtp_ports_exhausted_fails_the_call_once(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    agent_id, _ = await agent_with_number(api, fake_openai, first_message=None, trunk=TRUNK)
    async with gateway(services) as gw:
        services.dialer = gw
        held = gw.ports.acquire()
        await dial(api, agent_id)
        call = await only_call(services)
        gw.ports.release(held)
    assert (call.status, call.ended_reason) == ("failed", "call-start-error-no-media-port")
    assert await webhook_trail(services, call.id) == [
        "status-update:ended-with-error",
        "end-of-call-report",
    ]
    assert (await api.get("/account")).json()["active_calls"] == 0


async def test_outbound_database_fault_while_claiming_the_call_fails_it_once(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    agent_id, _ = await agent_with_number(api, fake_openai, first_message=None, trunk=TRUNK)
    async with services.db.transaction() as s:
        await s.execute(
            text(
                "CREATE TRIGGER refuse_claim BEFORE UPDATE OF owner_node ON calls "
                "WHEN NEW.owner_node IS NOT NULL "
                "BEGIN SELECT RAISE(ABORT, 'database is full (injected)'); END"
            )
        )
    async with gateway(services) as gw:
        services.dialer = gw
        await dial(api, agent_id)
        call = await only_call(services)
    assert (call.status, call.ended_reason) == ("failed", "call-start-error-database")
    assert await webhook_trail(services, call.id) == [
        "status-update:ended-with-error",
        "end-of-call-report",
    ]
    assert (await api.get("/account")).json()["active_calls"] == 0
