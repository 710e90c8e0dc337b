"""Two real ``flireo serve`` workers on one PostgreSQL and one Redis: a call runs on
worker B (sipp calls B's SIP port directly), and worker A's API reaches it.

* A's ``GET /calls/{id}/events`` (SSE) streams B's events: the control events and
  the final status-update arrive over Redis (A's SSE heartbeat is set to 120 s, so
  A never falls back to reading the stored status within the test);
* control commands sent to A's ``/calls/{id}/control`` are applied by B
  (``inject-context`` acknowledged, then ``end-call``: B sends the BYE sipp waits for);
* B's heartbeat key in Redis names its SIP address and its live call, and B's
  OPTIONS answer carries the live-call count.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.calls.scenarios import caller_waits_for_bye
from tests.cluster.workers import NUMBER, cluster, log_tail, reports, sip_probe, stored_calls
from tests.telephony.conftest import sipp  # noqa: F401 - pytest fixture
from tests.telephony.sipp import Sipp

pytestmark = [pytest.mark.sipp, pytest.mark.slow]


async def watch(client: httpx.AsyncClient, call_id: str, out: list[tuple[str, Any]]) -> None:
    """Collect (event, data) of a call's SSE stream until it ends."""
    async with client.stream("GET", f"/calls/{call_id}/events", timeout=None) as r:
        assert r.status_code == 200
        name = None
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name is not None:
                out.append((name, json.loads(line.split(":", 1)[1])))
                name = None


async def test_control_and_live_events_reach_the_owner_from_another_worker(
    tmp_path: Path,
    sipp: Sipp,  # noqa: F811 - the fixture imported above
) -> None:
    async with cluster(tmp_path, 2, per_worker=[{"FLIREO_SSE_HEARTBEAT_SECONDS": "120"}, {}]) as (
        workers,
        receiver,
        db_url,
    ):
        b = workers.workers[1]
        scenario = caller_waits_for_bye(tmp_path / "waits.xml")
        caller = await sipp.start(
            str(scenario),
            remote=("127.0.0.1", b.sip_port),
            service=NUMBER,
            extra=["-timeout", "60s"],
        )
        (call,) = await workers.wait_calls(1, via=0)
        call_id = call["id"]

        # B owns it: its heartbeat says so, and its OPTIONS answer counts it
        redis = workers.redis()
        try:
            beat = json.loads(await redis.get(f"flireo:node:{workers.node_id(1)}") or "{}")
            ttl_ms = await redis.pttl(f"flireo:node:{workers.node_id(1)}")
        finally:
            await redis.aclose()
        assert beat["sip"] == f"127.0.0.1:{b.sip_port}"
        assert 0 < ttl_ms <= 10_000
        options = await asyncio.to_thread(sip_probe, b.sip_port)
        assert options is not None
        assert options.status == 200
        assert options.headers["x-flireo-node"] == workers.node_id(1)
        assert options.headers["x-flireo-live-calls"] == "1"

        events: list[tuple[str, Any]] = []
        watcher = asyncio.create_task(watch(workers.api(0), call_id, events))
        for _ in range(100):  # the stream's first event: the stored status
            if events:
                break
            await asyncio.sleep(0.05)
        assert events, "no first event"
        assert events[0][0] == "status-update", events
        await asyncio.sleep(0.5)  # A's subscription is in place before B publishes

        r = await workers.api(0).post(
            f"/calls/{call_id}/control",
            json={"type": "inject-context", "content": "The caller is a VIP."},
        )
        assert r.status_code == 200, r.text
        r = await workers.api(0).post(f"/calls/{call_id}/control", json={"type": "end-call"})
        assert r.status_code == 200, r.text

        assert await caller.wait(30) == 0, caller.explain()  # B's BYE came, answered 200
        await asyncio.wait_for(watcher, 15)
        names = [(name, data.get("type") or data.get("status")) for name, data in events]
        assert ("control", "inject-context") in names, (names, *log_tail(workers))
        assert ("control", "end-call") in names, names
        assert names[-1] == ("status-update", "ended"), names
        ended = events[-1][1]
        assert ended["ended_reason"] == "manually-ended"

        calls, usage = await stored_calls(db_url)
        (stored,) = calls
        assert stored.owner_node == workers.node_id(1)
        assert stored.status == "ended"
        assert stored.ended_reason == "manually-ended"
        assert [u.call_id for u in usage] == [call_id]
        for _ in range(100):
            if call_id in reports(receiver):
                break
            await asyncio.sleep(0.1)
        assert len(reports(receiver)[call_id]) == 1
