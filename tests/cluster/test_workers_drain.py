"""SIGTERM drains a real ``flireo serve`` worker (two workers on one PostgreSQL and
one Redis, sipp calling worker B directly).

* From the signal on, B answers OPTIONS and new INVITEs with 503 (what takes it
  out of Kamailio's dispatcher) while its API keeps serving and its heartbeat
  says ``draining``; A still answers OPTIONS 200.
* B's live call runs to its natural end (sipp hangs up; one end-of-call report,
  ``customer-ended-call``), then B exits with code 0 and its heartbeat key is gone.
* A second SIGTERM during a drain stops at once: A's live call is hung up (sipp
  gets the BYE, the record ends ``call-cancelled``) and A exits 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.calls.scenarios import caller_hangs_up, caller_waits_for_bye
from tests.cluster.workers import NUMBER, cluster, log_tail, reports, sip_probe, stored_calls
from tests.telephony.conftest import sipp  # noqa: F401 - pytest fixture
from tests.telephony.sipp import Sipp

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

HOLD_MS = 8000


async def probe_until(port: int, status: int, *, method: str, limit_s: float) -> float:
    """Seconds until ``method`` to ``port`` is answered ``status``."""
    t0 = time.monotonic()
    while True:
        reply = await asyncio.to_thread(sip_probe, port, method, 1.0)
        if reply is not None and reply.status == status:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < limit_s, f"{method}: {reply} after {limit_s}s"
        await asyncio.sleep(0.05)


async def test_sigterm_drains_then_exits_zero(
    tmp_path: Path,
    sipp: Sipp,  # noqa: F811 - the fixture imported above
) -> None:
    env = {"FLIREO_DRAIN_TIMEOUT_S": "60"}
    async with cluster(tmp_path, 2, env=env) as (workers, receiver, db_url):
        a, b = workers.workers
        assert b.proc is not None
        assert a.proc is not None
        caller = await sipp.start(
            str(caller_hangs_up(tmp_path / "holds.xml", hold_ms=HOLD_MS)),
            remote=("127.0.0.1", b.sip_port),
            service=NUMBER,
            extra=["-timeout", "60s"],
        )
        (call,) = await workers.wait_calls(1, via=0)
        call_id = call["id"]
        answered = time.monotonic()

        b.proc.send_signal(signal.SIGTERM)
        took = await probe_until(b.sip_port, 503, method="OPTIONS", limit_s=1.0)
        print(f"drain: OPTIONS 503 {took * 1000:.0f} ms after SIGTERM")
        invite = await asyncio.to_thread(sip_probe, b.sip_port, "INVITE", 2.0)
        assert invite is not None
        assert invite.status == 503
        healthy = await asyncio.to_thread(sip_probe, a.sip_port, "OPTIONS", 2.0)
        assert healthy is not None
        assert healthy.status == 200

        # B's API keeps serving while it drains; its heartbeat says it drains
        async with httpx.AsyncClient(base_url=b.api, headers=b.headers, timeout=10) as api_b:
            r = await api_b.get(f"/calls/{call_id}")
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "in-progress"
        redis = workers.redis()
        try:
            beat = json.loads(await redis.get(f"flireo:node:{workers.node_id(1)}") or "{}")
            assert beat["draining"] is True
            assert beat["live_calls"] == 1
        finally:
            await redis.aclose()
        assert b.proc.poll() is None, "B exited with a live call"

        # the call runs to its end; then B exits 0
        assert await caller.wait(30) == 0, caller.explain()
        call_ended = time.monotonic()
        assert call_ended - answered >= HOLD_MS / 1000 - 0.5
        code = await asyncio.to_thread(b.proc.wait, 30)
        exited = time.monotonic()
        assert code == 0, b.logs()[-3000:]
        print(f"drain: B exited {exited - call_ended:.1f} s after its last call ended")
        assert "drained" in b.logs()
        calls, usage = await stored_calls(db_url)
        (stored,) = calls
        assert stored.status == "ended"
        assert stored.ended_reason == "customer-ended-call"
        assert [u.call_id for u in usage] == [call_id]
        for _ in range(100):  # A's outbox delivers whatever B left
            if call_id in reports(receiver):
                break
            await asyncio.sleep(0.1)
        assert len(reports(receiver)[call_id]) == 1, log_tail(workers)
        redis = workers.redis()
        try:
            assert await redis.get(f"flireo:node:{workers.node_id(1)}") is None
        finally:
            await redis.aclose()

        # a second SIGTERM stops at once: A's call is hung up, A exits 0
        waiting = await sipp.start(
            str(caller_waits_for_bye(tmp_path / "waits.xml")),
            remote=("127.0.0.1", a.sip_port),
            service=NUMBER,
            extra=["-timeout", "60s"],
        )
        second = await workers.wait_calls(1, via=0)
        second_id = second[0]["id"]
        a.proc.send_signal(signal.SIGTERM)
        await probe_until(a.sip_port, 503, method="OPTIONS", limit_s=1.0)
        await asyncio.sleep(1.0)
        assert a.proc.poll() is None, "A exited with a live call on the first SIGTERM"
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(a.proc.wait, 30)
        except subprocess.TimeoutExpired:
            raise AssertionError(a.logs()[-3000:]) from None
        assert code == 0, a.logs()[-3000:]
        print(f"drain: A stopped {time.monotonic() - t0:.1f} s after the second SIGTERM")
        assert await waiting.wait(15) == 0, waiting.explain()  # it got A's BYE
        calls, _ = await stored_calls(db_url)
        cut = next(c for c in calls if c.id == second_id)
        assert cut.status == "ended"
        assert cut.ended_reason == "call-cancelled"
