"""Outbound calls through a SIP trunk that demands digest auth (sipp checks it with
``<verifyauth>``), live control over the API, and our BYE."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from flireo.services.container import Services
from flireo.store.tables import Call
from tests.api.conftest import Org
from tests.calls.phone import SentAudio, agent_with_number, gateway
from tests.fakes.openai_chat import FakeOpenAI
from tests.speech import transcribe, words
from tests.telephony.sipp import SCENARIOS, Sipp, free_port

pytestmark = pytest.mark.sipp


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def status_of(services: Services, call_id: str) -> Call:
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        return call


async def wait_status(services: Services, call_id: str, *wanted: str, within: float = 30) -> Call:
    for _ in range(int(within / 0.05)):
        call = await status_of(services, call_id)
        if call.status in wanted:
            return call
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} stayed {call.status}, wanted {wanted}")


async def dial(api: httpx.AsyncClient, agent_id: str) -> str:
    r = await api.post(
        "/calls/outbound", json={"agent_id": agent_id, "destination": "+31612345678"}
    )
    assert r.status_code in (200, 201), r.text
    return str(r.json()["call_id"])


async def test_answered_through_a_digest_trunk_then_ended_by_control(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI, sipp: Sipp
) -> None:
    trunk = await sipp.start("uas_digest_auth.xml")
    agent_id, _ = await agent_with_number(
        api,
        fake_openai,
        trunk={"port": trunk.port, "username": "alice", "password": "s3cret-pass"},
    )
    sent = SentAudio()
    async with gateway(services, sent=sent) as gw:
        services.dialer = gw
        call_id = await dial(api, agent_id)
        await wait_status(services, call_id, "in-progress")
        await asyncio.sleep(3)  # the greeting
        r = await api.post(
            f"/calls/{call_id}/control", json={"type": "end-call", "message": "Goodbye for now."}
        )
        assert r.status_code == 200, r.text
        call = await wait_status(services, call_id, "ended")
        assert await trunk.wait(20) == 0, trunk.explain()

    assert (call.direction, call.ended_reason) == ("outbound", "manually-ended")
    assert call.started_at is not None
    heard = set(words(await transcribe(sent.pcm16k(call_id))))
    assert {"hello", "anna", "goodbye"} <= heard
    # the trunk chose PCMA: what we sent is A-law
    assert {p.payload_type for p in sent.packets[call_id]} <= {8, 101}
    invites = trunk.received("INVITE")
    assert len(invites) == 2  # the challenge, then the authorized one
    assert 'username="alice"' in invites[1]
    assert "s3cret-pass" not in trunk.messages


async def test_a_wrong_trunk_password_fails_the_call_with_a_clear_reason(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI, sipp: Sipp
) -> None:
    trunk = await sipp.start("uas_digest_auth.xml")
    agent_id, _ = await agent_with_number(
        api, fake_openai, trunk={"port": trunk.port, "username": "alice", "password": "wrong-pass"}
    )
    async with gateway(services) as gw:
        services.dialer = gw
        call_id = await dial(api, agent_id)
        call = await wait_status(services, call_id, "failed")
        assert await trunk.wait(20) == 0, trunk.explain()
    assert call.ended_reason == "dial-failed-authentication"
    assert call.error is not None
    assert "403" in call.error
    assert call.started_at is None


async def test_transfer_by_control_is_a_refer_the_far_end_accepts(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    # the far end checks the Refer-To: the number, reached through the same trunk
    port = free_port()
    scenario = (SCENARIOS / "uas_refer.xml").read_text()
    scenario = scenario.replace(
        r"&lt;sip:\+15559990000@example\.com&gt;",
        rf"&lt;sip:\+31699999999@127\.0\.0\.1:{port}&gt;",
    )
    (tmp_path / "refer.xml").write_text(scenario)
    far_end = await sipp.start(
        str(tmp_path / "refer.xml"), port=port, extra=["-key", "final", "200 OK"]
    )
    agent_id, _ = await agent_with_number(
        api, fake_openai, first_message=None, trunk={"port": port}
    )
    async with gateway(services) as gw:
        services.dialer = gw
        call_id = await dial(api, agent_id)
        await wait_status(services, call_id, "in-progress")
        r = await api.post(
            f"/calls/{call_id}/control",
            json={"type": "transfer", "destination": "+31699999999", "message": "One moment."},
        )
        assert r.status_code == 200, r.text
        call = await wait_status(services, call_id, "ended")
        assert await far_end.wait(20) == 0, far_end.explain()
    assert call.ended_reason == "assistant-forwarded-call"
    assert len(far_end.received("REFER")) == 1
