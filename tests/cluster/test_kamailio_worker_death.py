"""A worker SIGKILLed under load behind Kamailio (issue 13).

Three workers behind Kamailio hold 24 calls (sipp through Kamailio, 45 s each);
one worker is SIGKILLed: no shutdown code runs, its calls' RTP and SIP just
stop. Then:

* another worker's reaper ends every call the dead worker owned as
  ``worker-died`` (status ``ended``: they had been answered) within 30 s of the
  kill, with one end time each; calls on the other workers go on;
* new calls placed right after the kill (while Kamailio still believes the
  dead worker alive, until its next OPTIONS probe times out) succeed at
  ≥ 99 %: an INVITE that reaches the dead worker gets no answer and is tried
  on the next worker (failure_route); then the dispatcher stops choosing it;
* the held calls that lived on the other workers end normally.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.kamailio import Cluster, SippCaller, calls, kamailio_routes, wait_for

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

HELD = 24
HOLD_MS = 45_000
NEW_CALLS = 100
NEW_RATE = 5.0


def test_sigkill_under_load_ends_its_calls_worker_died(
    kamailio_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = kamailio_cluster
    assert cluster.kamailio is not None
    a, b, c = cluster.workers
    held = SippCaller(
        tmp_path / "held", cluster.kamailio.address, calls=HELD, rate=8, hold_ms=HOLD_MS
    ).start()
    wait_for(
        f"{HELD} calls in progress",
        lambda: len(calls(cluster, a, status="in-progress")) == HELD,
        30,
        cluster,
    )
    routes = kamailio_routes(cluster.kamailio.logs())
    on_b = [cid for cid, host in routes.items() if host == b.sip_host]
    assert on_b, routes
    live_before: dict[str, Any] = {x["id"]: x for x in calls(cluster, a, status="in-progress")}

    b.kill()
    killed = time.monotonic()
    fresh = SippCaller(
        tmp_path / "fresh",
        cluster.kamailio.address,
        calls=NEW_CALLS,
        rate=NEW_RATE,
        hold_ms=1000,
        trace=False,
    ).start()

    def reaped() -> list[dict[str, Any]] | None:
        died = [x for x in calls(cluster, a) if x["ended_reason"] == "worker-died"]
        return died if len(died) >= len(on_b) else None

    died = wait_for("the dead worker's calls ended", reaped, 40, cluster)
    reaped_after = time.monotonic() - killed
    assert reaped_after <= 30, f"worker-died after {reaped_after:.1f}s"
    assert len(died) == len(on_b), (len(died), len(on_b))
    assert {x["id"] for x in died} <= set(live_before)
    for call in died:
        assert call["status"] == "ended", call
        assert call["ended_at"] is not None
        assert call["started_at"] is not None
    # the calls on the other workers are still up
    still = calls(cluster, c, status="in-progress")
    assert {x["id"] for x in still} >= set(live_before) - {x["id"] for x in died}

    result = fresh.wait()
    assert result.successful >= 0.99 * NEW_CALLS, f"{result.successful}\n{result.errors}"
    assert cluster.kamailio.active(*b.sip_address) is False
    held_result = held.wait()
    # every held call on a live worker ended normally; those on b could not hang up
    assert held_result.successful == HELD - len(on_b), held_result.errors
    print(
        f"{len(on_b)} calls on the killed worker ended worker-died after {reaped_after:.1f}s; "
        f"new calls {result.successful}/{NEW_CALLS} ok, p95 set-up {result.p95_setup_s()} s"
    )
