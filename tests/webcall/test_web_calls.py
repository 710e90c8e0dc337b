"""Browser calls over WebRTC (``POST /calls/web``): the offer's validation, a call
that never connects, and a real call from an aiortc peer in another process
(Piper's voice as its microphone) to an agent on the fake LLM, with local Whisper
and Piper: both sides are transcribed, and when the peer vanishes (SIGKILL) the
call ends within 10 s, exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from sqlalchemy import select

from flireo.services.call_lifecycle import CallLifecycle
from flireo.services.call_runner import CallRunner
from flireo.services.container import Services
from flireo.store.tables import UsageLog
from flireo.webcall.service import WebCalls
from tests.api.conftest import Org
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.services.test_call_runner import (
    add_openai_key,
    events_of,
    make_agent,
    record,
    silence,
    until,
)
from tests.services.test_live_events import Watcher, serving
from tests.speech import speak, words

ROOT = Path(__file__).resolve().parents[2]

VIDEO_ONLY = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"
)


@pytest.fixture
async def web_calls(services: Services) -> AsyncIterator[WebCalls]:
    lifecycle = CallLifecycle(services.db, services.settings, services.clock, bus=services.bus)
    calls = services.web_calls = WebCalls(
        services, lifecycle, CallRunner(services, lifecycle, node_id="node-a")
    )
    try:
        yield calls
    finally:
        await calls.stop()
        services.web_calls = None


async def offer(*, audio: str | None = "sendrecv") -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if audio is not None:
        pc.addTransceiver("audio", direction=audio)
    else:
        pc.addTransceiver("video")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


async def test_bad_offers_and_agents_are_400_in_the_error_shape(
    api: httpx.AsyncClient, web_calls: WebCalls, fake_openai: FakeOpenAI, org: Org
) -> None:
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai)
    good = await offer()

    async def post(body: dict[str, object]) -> tuple[int, dict[str, object]]:
        r = await api.post("/calls/web", json=body)
        return r.status_code, r.json().get("error", {})

    cases: list[tuple[dict[str, object], str | None, str]] = [
        ({"agent_id": agent_id, "sdp": "hello"}, "invalid_sdp", "sdp"),
        ({"agent_id": agent_id, "sdp": "v=0\r\nm=audio garbage\r\n"}, "invalid_sdp", "sdp"),
        ({"agent_id": agent_id, "sdp": VIDEO_ONLY}, "offer_without_audio", "sdp"),
        ({"agent_id": agent_id, "sdp": await offer(audio=None)}, "offer_without_audio", "sdp"),
        (
            {"agent_id": agent_id, "sdp": await offer(audio="recvonly")},
            "offer_without_audio",
            "sdp",
        ),
        ({"agent_id": "agent-nope", "sdp": good}, "agent_not_found", "agent_id"),
        ({"agent_id": agent_id}, "missing_field", "sdp"),
        ({"agent_id": agent_id, "sdp": good, "video": True}, None, "video"),
    ]
    for body, code, param in cases:
        status, error = await post(body)
        assert status == 400, (body, error)
        assert (error["code"] if code else None, error["param"]) == (code, param), (body, error)
        assert error["type"] == "invalid_request_error"
        assert error["message"]
    r = await api.patch(f"/agents/{agent_id}", json={"is_active": False})
    assert r.status_code == 200, r.text
    status, error = await post({"agent_id": agent_id, "sdp": good})
    assert (status, error["code"]) == (400, "agent_inactive")
    listed = await api.get("/calls")
    assert listed.json()["pagination"]["total"] == 0  # nothing was stored


async def test_a_browser_that_never_connects_fails_the_call_once(
    api: httpx.AsyncClient, web_calls: WebCalls, fake_openai: FakeOpenAI, services: Services
) -> None:
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai)
    web_calls.connect_timeout_s = 1.0
    r = await api.post("/calls/web", json={"agentId": agent_id, "sdp": ""})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "sdp")  # an empty offer
    r = await api.post("/calls/web", json={"agentId": agent_id, "sdp": await offer()})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sdp"].startswith("v=0")
    assert "opus/48000" in body["sdp"].lower()
    assert "a=candidate" in body["sdp"]  # gathered: no trickle needed
    call = body["call"]
    assert (call["type"], call["direction"], call["status"]) == ("webCall", "web", "ringing")
    task = web_calls.tasks[call["id"]]
    await asyncio.wait_for(task, 10)
    stored = await record(services, call["id"])
    assert (stored.status, stored.ended_reason) == ("failed", "customer-did-not-answer")
    sent = await events_of(services, call["id"])
    assert [e for e, _ in sent].count("end-of-call-report") == 1
    assert fake_openai.requests == []


def caller_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(pcm)
    return path


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_browser_talks_to_the_agent_and_vanishes(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    web_calls: WebCalls,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai)
    fake_openai.enqueue(Reply.say("We are open from nine to five."))
    # the caller waits for the greeting, then asks
    wav = caller_wav(
        tmp_path / "caller.wav",
        silence(3.5) + await speak("What are your opening hours?") + silence(1.0),
    )
    async with (
        serving(services) as base,
        httpx.AsyncClient(base_url=base, headers=org.headers, timeout=30) as client,
    ):
        caller = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.webcall.caller",
            "--api",
            base,
            "--key",
            org.key,
            "--agent",
            agent_id,
            "--wav",
            str(wav),
            "--seconds",
            "120",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert caller.stdout is not None
            line = await asyncio.wait_for(caller.stdout.readline(), 30)
            call_id = json.loads(line)["call_id"]
            live = Watcher(client, f"/calls/{call_id}/events")
            await until(
                lambda: (
                    [t["role"] for t in live.of("transcript")][:3]
                    == ["assistant", "user", "assistant"]
                ),
                within=40,
                what="greeting, question and answer on the live stream",
            )
            assert (await record(services, call_id)).status == "in-progress"
            caller.send_signal(signal.SIGKILL)  # the browser vanishes: no goodbye at all
            gone = time.monotonic()
            await live.ended(15)
            took = time.monotonic() - gone
        finally:
            if caller.returncode is None:
                caller.kill()
            await caller.wait()
    assert took < 10, f"the call ended {took:.1f} s after the browser vanished"
    lines = live.of("transcript")
    assert lines[0]["text"] == "Hello, this is Anna."
    assert {"opening", "hours"} <= set(words(lines[1]["text"]))
    assert lines[2]["text"] == "We are open from nine to five."
    assert [d["status"] for d in live.of("status-update")][-1] == "ended"
    await asyncio.wait_for(web_calls.tasks.get(call_id) or asyncio.sleep(0), 30)
    stored = await record(services, call_id)
    assert (stored.status, stored.ended_reason, stored.direction) == (
        "ended",
        "customer-ended-call",
        "web",
    )
    roles = [m["role"] for m in stored.messages if m["role"] in ("user", "assistant")]
    assert roles[:3] == ["assistant", "user", "assistant"]
    r = await api.get(f"/calls/{call_id}")
    assert r.json()["type"] == "webCall"
    assert "User:" in r.json()["transcript"]
    assert "AI:" in r.json()["transcript"]
    sent = await events_of(services, call_id)
    assert [e for e, _ in sent].count("end-of-call-report") == 1
    assert [s for e, s in sent if e == "status-update"][-1] == "ended"
    async with services.db.read() as s:
        usage = (await s.execute(select(UsageLog).where(UsageLog.call_id == call_id))).scalars()
        assert len(list(usage)) == 1
