"""Transfers report their outcome (a ``transfer-update`` webhook, as Vapi sends, and a
note in the call's messages) and obey the organization's dial policy at dial
time too: a ``transferCall`` tool pointed at a premium-rate number is refused
before any REFER goes out, and the LLM hears why."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from flireo.services.container import Services
from flireo.store.tables import Call, WebhookEvent
from tests.api.conftest import Org
from tests.calls.phone import NUMBER, agent_with_number, gateway, ulaw_wav
from tests.calls.scenarios import caller_streams
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.speech import speak
from tests.telephony.sipp import SCENARIOS, Sipp, free_port

pytestmark = pytest.mark.sipp

NL_PREMIUM = "+319061234"  # 0906: premium rate
EVENTS = ["status-update", "end-of-call-report", "transfer-update"]


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def wait_status(services: Services, call_id: str, *wanted: str) -> Call:
    for _ in range(600):
        async with services.db.read() as s:
            call = await s.get(Call, call_id)
        if call is not None and call.status in wanted:
            return call
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} never reached {wanted}")


async def transfer_updates(services: Services, call_id: str) -> list[dict[str, Any]]:
    async with services.db.read() as s:
        rows = (
            await s.execute(
                select(WebhookEvent)
                .where(
                    WebhookEvent.call_id == call_id, WebhookEvent.event_type == "transfer-update"
                )
                .order_by(WebhookEvent.seq)
            )
        ).scalars()
        return [dict(e.payload["message"]) for e in rows if e.payload]


def notes(call: Call) -> list[dict[str, Any]]:
    return [m for m in call.messages or [] if m.get("source") == "transfer-update"]


async def test_an_accepted_transfer_sends_a_transfer_update(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
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
    r = await api.patch(f"/agents/{agent_id}", json={"webhook_events": EVENTS})
    assert r.status_code == 200, r.text
    async with gateway(services) as gw:
        services.dialer = gw
        r = await api.post(
            "/calls/outbound", json={"agent_id": agent_id, "destination": "+31612345678"}
        )
        assert r.status_code == 200, r.text
        call_id = r.json()["call_id"]
        await wait_status(services, call_id, "in-progress")
        r = await api.post(
            f"/calls/{call_id}/control",
            json={"type": "transfer", "destination": "+31699999999"},
        )
        assert r.status_code == 200, r.text
        call = await wait_status(services, call_id, "ended")
        assert await far_end.wait(20) == 0, far_end.explain()
    assert call.ended_reason == "assistant-forwarded-call"
    [update] = await transfer_updates(services, call_id)
    assert update["type"] == "transfer-update"
    assert update["destination"] == {"type": "number", "number": "+31699999999"}
    assert update["status"] == "succeeded"
    assert "REFER accepted" in update["detail"]
    assert update["call"]["id"] == call_id
    [note] = notes(call)
    assert note["transfer"]["status"] == "succeeded"
    assert note["transfer"]["destination"] == "+31699999999"


async def test_a_transfer_tool_to_a_premium_number_is_refused_at_dial_time(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    agent_id, _ = await agent_with_number(
        api, fake_openai, first_message=None, trunk={"port": free_port()}
    )
    agent = (await api.get(f"/agents/{agent_id}")).json()["agent"]
    llm = {
        **agent["llm_config"],
        "tools": [{"type": "transferCall", "destinations": [{"number": NL_PREMIUM}]}],
    }
    r = await api.patch(f"/agents/{agent_id}", json={"llm_config": llm, "webhook_events": EVENTS})
    assert r.status_code == 200, r.text
    fake_openai.enqueue(
        Reply.call("transferCall", {"destination": NL_PREMIUM}),
        Reply.say("I am sorry, I cannot put you through to that line."),
    )
    wav = ulaw_wav(await speak("Please put me through to the hotline."), tmp_path / "ask.wav")
    scenario = caller_streams(tmp_path / "ask.xml", wav, delay_ms=1000, hold_ms=9000)
    async with gateway(services) as gw:
        run = await sipp.start(
            str(scenario),
            remote=("127.0.0.1", gw.endpoint.port),
            service=NUMBER,
            extra=["-mp", str(free_port())],
        )
        # the caller's scenario has no REFER in it: one would fail the run
        assert await run.wait(60) == 0, run.explain()
        async with services.db.read() as s:
            [call] = list((await s.execute(select(Call))).scalars())
        call = await wait_status(services, call.id, "ended")
    assert call.ended_reason == "customer-ended-call"
    assert not run.received("REFER")
    tool_results = [m["content"] for m in call.messages if m["role"] == "tool"]
    assert any("premium_destination_not_allowed" in str(t) for t in tool_results), tool_results
    [update] = await transfer_updates(services, call.id)
    assert update["status"] == "failed"
    assert update["destination"] == {"type": "number", "number": NL_PREMIUM}
    assert update["detail"].startswith("premium_destination_not_allowed")
    [note] = notes(call)
    assert note["transfer"]["status"] == "failed"
