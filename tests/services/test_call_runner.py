"""A stored call run by :class:`CallRunner` end to end: real Whisper, Piper and the
fake OpenAI server; the record, usage, webhooks and live control through the API."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from flireo.clock import SystemClock
from flireo.engine.memory_transport import MemoryTransport
from flireo.media.frames import SAMPLE_RATE
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.call_runner import CallRunner
from flireo.services.container import Services
from flireo.store.tables import Call, UsageLog, WebhookEvent
from tests.api.conftest import Org
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.speech import speak, transcribe, words


def silence(seconds: float) -> bytes:
    return bytes(int(SAMPLE_RATE * seconds) * 2)


async def until(condition: Callable[[], Any], *, within: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def spoken_and_quiet(transport: MemoryTransport, *, after: float | None = None) -> None:
    """Wait until the agent said something (after ``after``) and then stayed quiet 0.5 s."""
    await until(
        lambda: (
            transport.last_played_at is not None
            and (after is None or transport.last_played_at > after)
        ),
        what="agent speech",
    )
    while True:
        mark = transport.last_played_at
        await asyncio.sleep(0.5)
        if transport.last_played_at == mark and transport.queued_samples == 0:
            return


async def make_agent(api: httpx.AsyncClient, fake: FakeOpenAI, **extra: Any) -> str:
    body = {
        "name": "Front desk",
        "first_message": "Hello, this is Anna.",
        "stt_config": {"provider": "whisper", "language": "en"},
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": fake.url,
            "messages": [{"role": "system", "content": "You are a receptionist."}],
        },
        "tts_config": {"provider": "piper"},
        "webhook_url": "https://hooks.example.com/flireo",
        **extra,
    }
    r = await api.post("/agents", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["agent"]["id"])


async def stored_call(services: Services, org: Org, agent_id: str) -> str:
    call_id = f"call-_+31612345678_{secrets.token_hex(4)}"
    async with services.db.transaction() as s:
        s.add(
            Call(
                id=call_id,
                org_id=org.id,
                agent_id=agent_id,
                direction="inbound",
                status="ringing",
                caller_phone="+31612345678",
                assistant_phone="+31850835037",
            )
        )
    return call_id


async def add_openai_key(api: httpx.AsyncClient, fake: FakeOpenAI) -> None:
    r = await api.post("/byok", json={"provider": "openai", "api_key": fake.api_key})
    assert r.status_code in (200, 201), r.text


def runner(services: Services) -> CallRunner:
    lifecycle = CallLifecycle(services.db, services.settings, services.clock)
    return CallRunner(services, lifecycle, node_id="node-a")


async def record(services: Services, call_id: str) -> Call:
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        return call


async def events_of(services: Services, call_id: str) -> list[tuple[str, str | None]]:
    async with services.db.read() as s:
        rows = (
            await s.execute(
                select(WebhookEvent)
                .where(WebhookEvent.call_id == call_id)
                .order_by(WebhookEvent.seq)
            )
        ).scalars()
        return [(e.event_type, (e.payload or {}).get("message", {}).get("status")) for e in rows]


async def test_answered_call_is_talked_through_and_recorded_once(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai)
    call_id = await stored_call(services, org, agent_id)
    fake_openai.enqueue(Reply.say("We are open from nine to five."))
    transport = MemoryTransport(SystemClock())
    run = runner(services)
    task = asyncio.create_task(run.run(call_id, transport))

    await spoken_and_quiet(transport)
    assert (await record(services, call_id)).status == "in-progress"
    greeting_end = transport.last_played_at
    assert greeting_end is not None
    await transport.caller_says(await speak("What are your opening hours?") + silence(0.6))
    await spoken_and_quiet(transport, after=greeting_end)
    transport.remote_hangup()
    outcome = await asyncio.wait_for(task, 30)

    assert outcome is not None
    answer = set(words(await transcribe(transport.agent_audio(since=greeting_end + 0.01))))
    assert {"open", "nine", "five"} <= answer
    # the key came from BYOK and the prompt from the agent
    assert fake_openai.requests[0]["messages"][0]["content"] == "You are a receptionist."
    call = await record(services, call_id)
    assert (call.status, call.ended_reason, call.owner_node) == (
        "ended",
        "customer-ended-call",
        "node-a",
    )
    assert [m["role"] for m in call.messages if m["role"] != "system"] == [
        "assistant",
        "user",
        "assistant",
    ]
    assert call.metrics is not None
    assert call.metrics["turns"]
    async with services.db.read() as s:
        usage = (await s.execute(select(UsageLog).where(UsageLog.call_id == call_id))).scalars()
        logs = list(usage)
    assert len(logs) == 1
    assert logs[0].vendor_usage["tts_characters"] > 0
    sent = await events_of(services, call_id)
    assert [e for e, _ in sent] == ["status-update", "status-update", "end-of-call-report"]
    assert [s for _, s in sent[:2]] == ["in-progress", "ended"]
    # finishing again changes nothing: one record, one report
    again = CallCompletion(status="ended", ended_reason="customer-ended-call")
    assert not await run.lifecycle.finish(call_id, again)


async def test_control_commands_from_the_api_reach_the_live_call(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai, first_message=None)
    call_id = await stored_call(services, org, agent_id)
    transport = MemoryTransport(SystemClock())
    task = asyncio.create_task(runner(services).run(call_id, transport))
    say = {"type": "say", "content": "Please hold on for a moment."}
    r = await api.post(f"/calls/{call_id}/control", json=say)
    for _ in range(200):  # 400 until the call is in progress
        if r.status_code == 200:
            break
        assert r.status_code == 400, r.text
        await asyncio.sleep(0.05)
        r = await api.post(f"/calls/{call_id}/control", json=say)
    assert r.status_code == 200, r.text
    await spoken_and_quiet(transport)
    assert {"hold", "moment"} <= set(words(await transcribe(transport.agent_audio())))

    bad = await api.post(f"/calls/{call_id}/control", json={"type": "say"})
    assert bad.status_code in (400, 422)
    r = await api.post(
        f"/calls/{call_id}/control", json={"type": "end-call", "message": "Goodbye now."}
    )
    assert r.status_code == 200, r.text
    outcome = await asyncio.wait_for(task, 30)
    assert outcome is not None
    assert outcome.ended_reason == "manually-ended"
    assert (await record(services, call_id)).ended_reason == "manually-ended"
    after = await api.post(f"/calls/{call_id}/control", json={"type": "say", "content": "Hi"})
    assert after.status_code == 400
    assert after.json()["error"]["code"] == "call_not_active"


async def test_a_missing_vendor_key_ends_the_call_with_its_reason(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    # a hosted vendor (no base_url of the agent's own), no BYOK key, no platform key;
    # a self-hosted base_url is called without a key (tests/security/test_self_hosted_llm.py)
    llm = {"provider": "openai", "model": "gpt-4o-mini", "messages": []}
    agent_id = await make_agent(api, fake_openai, llm_config=llm)
    call_id = await stored_call(services, org, agent_id)
    transport = MemoryTransport(SystemClock())
    assert await runner(services).run(call_id, transport) is None
    call = await record(services, call_id)
    assert (call.status, call.ended_reason) == (
        "ended",
        "pipeline-error-openai-llm-missing-api-key",
    )
    assert transport.hung_up
    assert fake_openai.requests == []
    sent = await events_of(services, call_id)
    assert [e for e, _ in sent].count("end-of-call-report") == 1


async def test_cancelled_call_still_ends_once(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai)
    call_id = await stored_call(services, org, agent_id)
    transport = MemoryTransport(SystemClock())
    task = asyncio.create_task(runner(services).run(call_id, transport))
    await until(lambda: transport.played, what="the greeting")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    call = await record(services, call_id)
    assert (call.status, call.ended_reason) == ("ended", "call-cancelled")
    assert transport.hung_up
    sent = await events_of(services, call_id)
    assert [e for e, _ in sent].count("end-of-call-report") == 1
