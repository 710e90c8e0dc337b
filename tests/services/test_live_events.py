"""Live call events over Server-Sent Events, end to end: a real uvicorn, an httpx
streaming client, a call run by :class:`CallRunner` on the in-memory line (Piper,
Whisper, the fake LLM), on the memory bus and across two nodes over real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from flireo.api.app import create_app
from flireo.bus.memory import MemoryBus
from flireo.bus.redis import RedisBus
from flireo.clock import SystemClock
from flireo.engine.events import (
    ControlApplied,
    MessageAdded,
    ToolCallFinished,
    ToolCallStarted,
)
from flireo.engine.memory_transport import MemoryTransport
from flireo.services.call_lifecycle import CallLifecycle
from flireo.services.call_runner import CallRunner
from flireo.services.container import Services
from flireo.services.live_events import BusEventSink
from tests.api.conftest import MakeOrg, Org
from tests.bus.test_bus import redis_url
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import free_port
from tests.services.test_call_runner import (
    add_openai_key,
    make_agent,
    silence,
    spoken_and_quiet,
    stored_call,
    until,
)
from tests.speech import speak, words

Event = tuple[str, dict[str, Any]]


@contextlib.asynccontextmanager
async def serving(services: Services) -> AsyncIterator[str]:
    """The app on a real loopback port, on this test's loop; yields its API base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(services, manage_lifecycle=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, what="uvicorn")
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class Watcher:
    """Reads one SSE stream in a task: its events, its ping comments, whether it ended."""

    def __init__(self, client: httpx.AsyncClient, path: str) -> None:
        self.events: list[Event] = []
        self.pings = 0
        self.status: int | None = None
        self.content_type = ""
        self.task = asyncio.create_task(self._read(client, path))

    async def _read(self, client: httpx.AsyncClient, path: str) -> None:
        async with client.stream("GET", path) as r:
            self.status, self.content_type = r.status_code, r.headers.get("content-type", "")
            if r.status_code != 200:
                await r.aread()
                return
            type_, data = "message", ""
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.pings += 1
                elif line.startswith("event:"):
                    type_ = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    self.events.append((type_, json.loads(data)))
                    type_, data = "message", ""

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [d for t, d in self.events if t == type_]

    async def ended(self, within: float = 30) -> None:
        await asyncio.wait_for(self.task, within)

    def stop(self) -> None:
        self.task.cancel()


def _nodes(services: Services, bus: str) -> tuple[Services, Services]:
    """(the node running the call, the node serving the watcher)."""
    if bus == "memory":
        return services, services
    url = redis_url()
    return (
        dataclasses.replace(services, bus=RedisBus(url)),
        dataclasses.replace(services, bus=RedisBus(url)),
    )


@pytest.mark.parametrize(
    ("backend", "bus"), [("sqlite", "memory"), ("postgres", "redis")], indirect=["backend"]
)
async def test_a_watcher_sees_the_call_live_and_the_stream_ends_with_it(
    services: Services,
    org: Org,
    make_org: MakeOrg,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    bus: str,
) -> None:
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai)
    call_id = await stored_call(services, org, agent_id)
    fake_openai.enqueue(Reply.say("We are open from nine to five."))
    owner, watcher_node = _nodes(services, bus)
    services.settings.sse_heartbeat_seconds = 0.5
    for node in {id(owner): owner, id(watcher_node): watcher_node}.values():
        if node.bus is not services.bus:
            await node.bus.start()
    other = await make_org("Other Corp")
    try:
        async with (
            serving(watcher_node) as base,
            httpx.AsyncClient(base_url=base, headers=org.headers, timeout=30) as client,
            httpx.AsyncClient(base_url=base, headers=other.headers) as stranger,
        ):
            r = await stranger.get(f"/calls/{call_id}/events")
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "not_found", r.text

            call = Watcher(client, f"/calls/{call_id}/events")
            everything = Watcher(client, "/calls/events")
            await until(lambda: call.events and everything.pings, what="both streams open")
            assert call.content_type.startswith("text/event-stream")
            assert call.events[0] == (
                "status-update",
                {"call_id": call_id, "status": "ringing"},
            )

            lifecycle = CallLifecycle(owner.db, owner.settings, owner.clock, bus=owner.bus)
            transport = MemoryTransport(SystemClock())
            task = asyncio.create_task(
                CallRunner(owner, lifecycle, node_id="node-a").run(call_id, transport)
            )
            await until(lambda: call.of("transcript"), what="the greeting's line")
            assert call.of("transcript")[0]["role"] == "assistant"
            assert call.of("transcript")[0]["text"] == "Hello, this is Anna."
            await spoken_and_quiet(transport)
            mark = transport.last_played_at
            await transport.caller_says(await speak("What are your opening hours?") + silence(0.6))
            await spoken_and_quiet(transport, after=mark)
            await asyncio.sleep(1.2)  # idle: heartbeats
            pings = call.pings
            assert pings >= 1

            r = await client.post(f"/calls/{call_id}/control", json={"type": "end-call"})
            assert r.status_code == 200, r.text
            await call.ended()  # the stream closes by itself after the terminal status
            await asyncio.wait_for(task, 30)

            statuses = [d["status"] for d in call.of("status-update")]
            assert statuses == ["ringing", "in-progress", "ended"]
            assert call.of("status-update")[-1]["ended_reason"] == "manually-ended"
            lines = call.of("transcript")
            assert [line["role"] for line in lines] == ["assistant", "user", "assistant"]
            assert {"opening", "hours"} <= set(words(lines[1]["text"]))
            assert lines[2]["text"] == "We are open from nine to five."
            assert lines[1]["time"] > lines[0]["time"] >= 0
            assert call.of("control") == [{"call_id": call_id, "type": "end-call", "ok": True}]
            # the terminal status comes after every line of the call
            assert call.events[-1][0] == "status-update"

            await until(
                lambda: "ended" in [d["status"] for d in everything.of("status-update")],
                what="the org stream's end",
            )
            assert [(d["call_id"], d["status"]) for d in everything.of("status-update")] == [
                (call_id, "in-progress"),
                (call_id, "ended"),
            ]
            assert not everything.of("transcript")  # the org stream carries statuses only
            everything.stop()

            # an ended call answers its state and closes
            after = Watcher(client, f"/calls/{call_id}/events")
            await after.ended(10)
            assert after.events == [
                (
                    "status-update",
                    {"call_id": call_id, "status": "ended", "ended_reason": "manually-ended"},
                )
            ]
    finally:
        for node in (owner, watcher_node):
            if node.bus is not services.bus:
                await node.bus.stop()


async def test_tool_calls_and_control_results_become_events() -> None:
    bus = MemoryBus()
    sub = await bus.subscribe_events("org-1", "call-1")
    other_call = await bus.subscribe_events("org-1", "call-2")
    other_org = await bus.subscribe_events("org-2")
    sink = BusEventSink(bus, "org-1", "call-1")
    await sink.emit(ToolCallStarted("t1", "lookup", {"city": "Utrecht"}, "function"))
    await sink.emit(ToolCallFinished("t1", "lookup", "sunny", None, 0.25))
    await sink.emit(ControlApplied("say", ok=False, detail="no voice"))
    await sink.emit(MessageAdded({"role": "system", "content": "be nice", "source": "prompt"}))
    await sink.emit(MessageAdded({"role": "tool", "content": "sunny", "secondsFromStart": 1.0}))
    got = [await sub.get(within=1) for _ in range(3)]
    assert [(e["type"], e["data"]) for e in got if e is not None] == [
        (
            "tool-call",
            {
                "call_id": "call-1",
                "id": "t1",
                "name": "lookup",
                "kind": "function",
                "arguments": {"city": "Utrecht"},
            },
        ),
        (
            "tool-call",
            {
                "call_id": "call-1",
                "id": "t1",
                "name": "lookup",
                "arguments": {"city": "Utrecht"},
                "result": "sunny",
                "seconds": 0.25,
            },
        ),
        ("control", {"call_id": "call-1", "type": "say", "ok": False, "detail": "no voice"}),
    ]
    with pytest.raises(TimeoutError):  # prompts and tool plumbing are no transcript lines
        await sub.get(within=0.1)
    with pytest.raises(TimeoutError):
        await other_call.get(within=0.05)
    with pytest.raises(TimeoutError):
        await other_org.get(within=0.05)


async def test_a_watcher_that_does_not_keep_up_is_cut_off() -> None:
    bus = MemoryBus()
    slow = await bus.subscribe_events("org-1", "call-1")
    sink = BusEventSink(bus, "org-1", "call-1")
    for i in range(1001):
        await sink.emit(ControlApplied(f"c{i}", ok=True))
    assert await slow.get(within=1) is None
    assert not bus.events.watching("org-1", "call-1")
    await slow.close()
