"""sipp calls a registered number over SIP/RTP on loopback and talks to the agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from flireo.services.container import Services
from flireo.store.tables import Call, WebhookEvent
from tests.api.conftest import Org
from tests.calls.phone import NUMBER, SentAudio, agent_with_number, gateway, ulaw_wav
from tests.calls.scenarios import caller_streams
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.speech import speak, transcribe, words
from tests.telephony.sipp import Sipp, free_port

pytestmark = pytest.mark.sipp


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the API suite covers PostgreSQL; these calls are about SIP/RTP


async def the_call(services: Services, *, final: bool = True) -> Call:
    for _ in range(300):
        async with services.db.read() as s:
            calls = list((await s.execute(select(Call))).scalars())
        if calls and (not final or calls[0].status in ("ended", "failed", "rejected")):
            assert len(calls) == 1
            return calls[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {'finished ' if final else ''}call record")


async def webhook_trail(services: Services, call_id: str) -> list[str]:
    async with services.db.read() as s:
        rows = (
            await s.execute(
                select(WebhookEvent)
                .where(WebhookEvent.call_id == call_id)
                .order_by(WebhookEvent.seq)
            )
        ).scalars()
        return [
            f"status-update:{e.payload['message']['status']}"
            if e.event_type == "status-update" and e.payload
            else e.event_type
            for e in rows
        ]


async def test_caller_speaks_over_rtp_and_hears_the_agent(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    await agent_with_number(api, fake_openai)
    fake_openai.enqueue(Reply.say("We are open from nine to five."))
    wav = ulaw_wav(await speak("What are your opening hours?"), tmp_path / "caller.wav")
    scenario = caller_streams(tmp_path / "speaks.xml", wav, delay_ms=3000, hold_ms=9000)
    sent = SentAudio()
    async with gateway(services, sent=sent) as gw:
        run = await sipp.start(
            str(scenario),
            remote=("127.0.0.1", gw.endpoint.port),
            service=NUMBER,
            extra=["-mp", str(free_port())],
        )
        assert await run.wait(60) == 0, run.explain()
        call = await the_call(services)

    assert (call.status, call.ended_reason, call.direction) == (
        "ended",
        "customer-ended-call",
        "inbound",
    )
    assert call.caller_phone == "+31612345678"
    assert call.duration_seconds is not None
    assert call.duration_seconds >= 10
    user_said = [m["content"] for m in call.messages if m["role"] == "user"]
    assert words(" ".join(user_said)) == words("What are your opening hours?")
    heard = " ".join(words(await transcribe(sent.pcm16k(call.id))))
    assert " ".join(words("Hello, this is Anna.")) in heard
    assert " ".join(words("We are open from nine to five.")) in heard
    # the question reached the LLM as the caller's turn
    assert fake_openai.requests[-1]["messages"][-1]["role"] == "user"
    assert await webhook_trail(services, call.id) == [
        "status-update:ringing",
        "status-update:in-progress",
        "status-update:ended",
        "end-of-call-report",
    ]
