"""sipp calls a registered number over SIP/RTP on loopback and talks to the agent."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from flireo.services.container import Services
from flireo.store.tables import Call, Organization, WebhookEvent
from tests.api.conftest import Org
from tests.calls.phone import NUMBER, SentAudio, agent_with_number, gateway, ulaw_wav
from tests.calls.scenarios import (
    callee_answers,
    caller_hangs_up,
    caller_refuses_refer,
    caller_streams,
    caller_waits_for_bye,
)
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
    # Whisper tiny may drop or swap a small word on phone audio: check the key words
    user_said = [m["content"] for m in call.messages if m["role"] == "user"]
    assert {"opening", "hours"} <= set(words(" ".join(user_said)))
    heard = set(words(await transcribe(sent.pcm16k(call.id))))
    assert {"hello", "anna"} <= heard
    assert {"open", "nine", "five"} <= heard
    # the question reached the LLM as the caller's turn
    assert fake_openai.requests[-1]["messages"][-1]["role"] == "user"
    assert await webhook_trail(services, call.id) == [
        "status-update:ringing",
        "status-update:in-progress",
        "status-update:ended",
        "end-of-call-report",
    ]


async def test_caller_cancels_before_the_answer(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
) -> None:
    await agent_with_number(api, fake_openai)
    async with gateway(services) as gw:
        run = await sipp.start(
            "uac_cancel.xml", remote=("127.0.0.1", gw.endpoint.port), service=NUMBER
        )
        assert await run.wait(30) == 0, run.explain()
        call = await the_call(services)
    assert (call.status, call.ended_reason) == ("ended", "customer-ended-call")
    assert call.started_at is None
    assert run.sent("CANCEL")
    assert fake_openai.requests == []


async def test_rfc4733_digits_from_the_caller_reach_the_agent(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    await agent_with_number(api, fake_openai, first_message=None)
    fake_openai.enqueue(Reply.say("Thank you."))
    scenario = caller_waits_for_bye(
        tmp_path / "dtmf.xml", dtmf_pcap="/usr/share/sip-tester/dtmf_2833_1.pcap"
    )
    async with gateway(services) as gw:
        run = await sipp.start(
            str(scenario),
            remote=("127.0.0.1", gw.endpoint.port),
            service=NUMBER,
            extra=["-mp", str(free_port())],
        )
        call = await the_call(services, final=False)
        for _ in range(200):
            if fake_openai.requests:
                break
            await asyncio.sleep(0.05)
        r = await api.post(f"/calls/{call.id}/control", json={"type": "end-call"})
        assert r.status_code == 200, r.text
        assert await run.wait(30) == 0, run.explain()
        call = await the_call(services)
    assert fake_openai.requests, "the digits never reached the LLM"
    user = [m["content"] for m in fake_openai.requests[0]["messages"] if m["role"] == "user"]
    assert user == ["[DTMF] 1"]
    assert call.ended_reason == "manually-ended"


async def test_a_flood_is_banned_while_a_real_call_completes(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    await agent_with_number(api, fake_openai, first_message=None)
    async with gateway(services) as gw:
        flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flooder.bind(("127.0.0.9", 0))
        flooder.setblocking(False)
        try:
            for n in range(100):
                flooder.sendto(invite(n, flooder.getsockname()[1]), ("127.0.0.1", gw.endpoint.port))
            run = await sipp.start(
                str(caller_hangs_up(tmp_path / "legit.xml", hold_ms=1000)),
                remote=("127.0.0.1", gw.endpoint.port),
                service=NUMBER,
            )
            assert await run.wait(30) == 0, run.explain()
            await asyncio.sleep(0.5)
            answered: set[str] = set()
            with contextlib.suppress(BlockingIOError):
                while True:
                    data = flooder.recv(65535).decode()
                    answered.update(re.findall(r"Call-ID: (flood-\d+)", data))
        finally:
            flooder.close()
        call = await the_call(services)
    assert 0 < len(answered) <= 16
    assert gw.guard.is_banned("127.0.0.9")
    assert not gw.guard.is_banned("127.0.0.1")
    assert (call.status, call.ended_reason) == ("ended", "customer-ended-call")


def invite(n: int, port: int) -> bytes:
    return (
        f"INVITE sip:+4915100000{n % 10}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:{port};branch=z9hG4bKflood{n}\r\n"
        f"From: <sip:scan@127.0.0.9>;tag=f{n}\r\n"
        f"To: <sip:+4915100000{n % 10}@127.0.0.1>\r\n"
        f"Call-ID: flood-{n}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def test_transfer_without_refer_bridges_through_the_trunk(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    callee = await sipp.start(str(callee_answers(tmp_path / "callee.xml")))
    await agent_with_number(api, fake_openai, first_message=None, trunk={"port": callee.port})
    async with gateway(services) as gw:
        caller = await sipp.start(
            str(caller_refuses_refer(tmp_path / "caller.xml", hold_ms=2500)),
            remote=("127.0.0.1", gw.endpoint.port),
            service=NUMBER,
            extra=["-mp", str(free_port())],
        )
        call = await the_call(services, final=False)
        for _ in range(200):
            r = await api.post(
                f"/calls/{call.id}/control",
                json={"type": "transfer", "destination": "+31699999999"},
            )
            if r.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 200, r.text
        call = await the_call(services)
        assert call.ended_reason == "assistant-forwarded-call"
        # the caller stays connected to the callee until the caller hangs up
        assert await caller.wait(30) == 0, caller.explain()
        assert await callee.wait(30) == 0, callee.explain()
    (invite_to_callee,) = callee.received("INVITE")
    assert invite_to_callee.startswith(f"INVITE sip:+31699999999@127.0.0.1:{callee.port} ")
    assert len(caller.received("REFER")) == 1
    assert len(callee.received("BYE")) == 1


async def test_stopping_the_server_hangs_up_and_ends_each_call_once(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    await agent_with_number(api, fake_openai, first_message=None)
    async with gateway(services) as gw:
        run = await sipp.start(
            str(caller_waits_for_bye(tmp_path / "waits.xml")),
            remote=("127.0.0.1", gw.endpoint.port),
            service=NUMBER,
        )
        for _ in range(200):
            if (await the_call(services, final=False)).status == "in-progress":
                break
            await asyncio.sleep(0.05)
    # the gateway stopped: the caller got its BYE and the record ended once
    assert await run.wait(20) == 0, run.explain()
    call = await the_call(services)
    assert (call.status, call.ended_reason) == ("ended", "call-cancelled")
    assert (await webhook_trail(services, call.id)).count("end-of-call-report") == 1


async def test_no_minutes_left_plays_the_message_and_rejects(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,
    tmp_path: Path,
) -> None:
    await agent_with_number(api, fake_openai)
    async with services.db.transaction() as s:
        await s.execute(update(Organization).values(minutes_balance=0))
    sent = SentAudio()
    async with gateway(services, sent=sent) as gw:
        run = await sipp.start(
            str(caller_waits_for_bye(tmp_path / "waits.xml")),
            remote=("127.0.0.1", gw.endpoint.port),
            service=NUMBER,
        )
        assert await run.wait(30) == 0, run.explain()
        call = await the_call(services)
    assert (call.status, call.ended_reason) == ("rejected", "insufficient-credits")
    heard = set(words(await transcribe(sent.pcm16k(call.id))))
    assert {"cannot", "take", "calls"} <= heard
    assert fake_openai.requests == []
