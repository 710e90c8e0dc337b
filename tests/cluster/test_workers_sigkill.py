"""Three real ``flireo serve`` workers on one PostgreSQL and one Redis; worker B is
SIGKILLed with two answered calls, worker C has one.

* within 30 s the others (A and C both run a reaper) end B's calls: status
  ``ended``, ``ended_reason`` ``worker-died``, ``ended_at`` at B's last heartbeat
  (between one heartbeat interval before the kill and the kill), the answered
  time billed once (one usage record each), one end-of-call report each;
* C's call is untouched and still takes control commands through A;
* B's heartbeat key is gone; B restarts under its node id, while a worker
  started with a live worker's node id refuses to start (exit code 1).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.calls.scenarios import caller_hangs_up, caller_waits_for_bye
from tests.cluster.workers import NUMBER, cluster, log_tail, reports, stored_calls
from tests.live.server import LiveServer
from tests.telephony.conftest import sipp  # noqa: F401 - pytest fixture
from tests.telephony.sipp import Sipp

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

#: FLIREO_NODE_HEARTBEAT_TTL_S (the default)
TTL_S = 10.0


def aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def test_sigkilled_worker_calls_end_as_worker_died_once(
    tmp_path: Path,
    sipp: Sipp,  # noqa: F811 - the fixture imported above
) -> None:
    began = time.monotonic()
    phases: dict[str, float] = {}
    async with cluster(tmp_path, 3) as (workers, receiver, db_url):
        phases["started"] = round(time.monotonic() - began, 1)
        b, c = workers.workers[1], workers.workers[2]
        on_b = await sipp.start(
            str(caller_hangs_up(tmp_path / "holds.xml", hold_ms=150_000)),
            remote=("127.0.0.1", b.sip_port),
            service=NUMBER,
            calls=2,
            extra=["-timeout", "170s", "-default_behaviors", "none"],
        )
        on_c = await sipp.start(
            str(caller_waits_for_bye(tmp_path / "waits.xml")),
            remote=("127.0.0.1", c.sip_port),
            service=NUMBER,
            extra=["-timeout", "170s"],
        )
        live = await workers.wait_calls(3, via=0)
        calls, _ = await stored_calls(db_url)
        owners = {call.id: call.owner_node for call in calls}
        b_calls = sorted(cid for cid, node in owners.items() if node == workers.node_id(1))
        c_calls = [cid for cid, node in owners.items() if node == workers.node_id(2)]
        assert len(b_calls) == 2, owners
        assert len(c_calls) == 1, owners
        assert len(live) == 3

        await asyncio.sleep(6)  # answered time, beyond one heartbeat interval
        killed_at = datetime.now(UTC)
        t0 = time.monotonic()
        b.kill()
        on_b.kill()  # the callers are gone with their worker's media

        deadline = t0 + 30
        ended: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline and len(ended) < 2:
            for cid in b_calls:
                call = await workers.call(cid, via=0)
                if call["status"] in ("ended", "failed"):
                    ended[cid] = call
            await asyncio.sleep(0.25)
        took = time.monotonic() - t0
        phases["reaped"] = round(time.monotonic() - began, 1)
        assert len(ended) == 2, (f"after {took:.1f}s: {ended}", *log_tail(workers))
        print(f"worker-died: both calls ended {took:.1f} s after the SIGKILL")
        assert took <= 30

        # let any second reaper or delivery retry show itself before counting
        await asyncio.sleep(2)
        calls, usage = await stored_calls(db_url)
        by_id = {call.id: call for call in calls}
        usage_by_call: dict[str, list[object]] = {}
        for u in usage:
            usage_by_call.setdefault(u.call_id or "", []).append(u)
        got = reports(receiver)
        for cid in b_calls:
            call = by_id[cid]
            assert call.status == "ended"
            assert call.ended_reason == "worker-died"
            assert call.started_at is not None
            assert call.ended_at is not None
            ended_at, started_at = aware(call.ended_at), aware(call.started_at)
            # dated to B's last heartbeat: at most one interval (TTL/3) before the kill
            assert killed_at - timedelta(seconds=TTL_S / 3 + 1) <= ended_at <= killed_at
            answered = (ended_at - started_at).total_seconds()
            assert answered >= 2
            assert call.duration_seconds is not None
            assert abs(call.duration_seconds - answered) <= 1
            (log,) = usage_by_call[cid]
            assert log.duration_seconds == call.duration_seconds  # type: ignore[attr-defined]
            assert log.minutes_used >= 1  # type: ignore[attr-defined]
            assert len(got.get(cid, [])) == 1, got.get(cid)
            report = got[cid][0]
            assert report["endedReason"] == "worker-died"
        # the reapers of A and C together ended exactly the two calls
        reaped = [
            int(n)
            for w in (workers.workers[0], c)
            for n in re.findall(r"ended the calls of a dead worker.*?count=(\d+)", w.logs())
        ]
        assert sum(reaped) == 2, reaped

        # C's call lives on and is still reachable through A
        (c_call,) = c_calls
        assert (await workers.call(c_call, via=0))["status"] == "in-progress"
        r = await workers.api(0).post(f"/calls/{c_call}/control", json={"type": "end-call"})
        assert r.status_code == 200, r.text
        assert await on_c.wait(30) == 0, on_c.explain()

        phases["checked"] = round(time.monotonic() - began, 1)
        # B's heartbeat expired: B starts again under its node id, while a second
        # worker with A's node id is refused (both started at once, to save time)
        redis = workers.redis()
        try:
            assert await redis.get(f"flireo:node:{workers.node_id(1)}") is None
        finally:
            await redis.aclose()
        twin = LiveServer(tmp_path / "twin", env=dict(workers.workers[0].env))
        twin.env["FLIREO_DATA_DIR"] = str(tmp_path / "twin" / "data")
        twin.env["FLIREO_PORT"] = str(twin.port)
        twin.env["FLIREO_SIP_PORT"] = str(twin.sip_port)
        restarted, refused = await asyncio.gather(
            asyncio.to_thread(b.start),
            asyncio.to_thread(twin.start, 60.0),
            return_exceptions=True,
        )
        assert restarted is None, restarted
        assert isinstance(refused, RuntimeError), refused
        assert "exited" in str(refused)
        assert twin.proc is not None
        assert twin.proc.returncode == 1
        assert "is in use by a live worker" in twin.logs()
        redis = workers.redis()
        try:
            beat = json.loads(await redis.get(f"flireo:node:{workers.node_id(1)}") or "{}")
            twin_of = json.loads(await redis.get(f"flireo:node:{workers.node_id(0)}") or "{}")
        finally:
            await redis.aclose()
        assert beat["pid"] == b.proc.pid  # type: ignore[union-attr]
        assert twin_of["pid"] == workers.workers[0].proc.pid  # type: ignore[union-attr]
        print(f"phases: {phases}")
