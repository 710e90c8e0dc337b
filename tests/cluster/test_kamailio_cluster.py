"""Kamailio in front of three ``flireo serve`` workers (issue 13), end to end.

Kamailio (``deploy/kamailio.cfg``, Debian ``kamailio``) listens on 127.0.0.1;
the workers on 127.0.0.2, .3 and .4 share one PostgreSQL database and Redis.
sipp calls Kamailio only: its INVITEs are dispatched to the workers, its ACKs
and BYEs loose-routed (Record-Route) to the worker that answered, RTP goes
straight between sipp and the worker. One test walks through:

1. every worker takes calls (the Contact of each 200 OK names the worker);
2. an ``end-call`` control command sent to the API of worker A ends a call that
   lives on worker B (``manually-ended``, the caller gets B's BYE);
3. SIGTERM of worker C under load: Kamailio sees it inactive at once (its
   OPTIONS answer 503), new calls go to the others, the calls C holds run to
   their end, C exits 0 when they are over: no call fails;
4. C started again (a rolling restart): Kamailio probes it up and it takes
   calls again.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.cluster.kamailio import (
    Cluster,
    SippCaller,
    calls,
    ended_calls,
    kamailio_routes,
    options_ping,
    wait_for,
)

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_spread_control_across_workers_and_drain(kamailio_cluster: Cluster, tmp_path: Path) -> None:
    cluster = kamailio_cluster
    assert cluster.kamailio is not None
    a, b, c = cluster.workers
    hosts = {w.sip_host for w in cluster.workers}

    # --- 1. every worker takes calls ------------------------------------------------------
    spread = SippCaller(
        tmp_path / "spread", cluster.kamailio.address, calls=30, rate=10, hold_ms=1000
    )
    result = spread.start().wait()
    assert result.successful == 30, f"{result.errors}\n{cluster.logs()}"
    assert set(result.answered_by) == hosts, result.answered_by
    assert min(result.answered_by.values()) >= 3, result.answered_by  # least-loaded spreads
    ended = wait_for(  # the records end just after the BYE's 200
        "30 ended calls", lambda: ended_calls(cluster, c, 30), 20, cluster
    )
    assert {call["ended_reason"] for call in ended} == {"customer-ended-call"}

    # --- 2. a control command sent to one worker reaches the call on another ---------------
    before = kamailio_routes(cluster.kamailio.logs())
    held = SippCaller(
        tmp_path / "held",
        cluster.kamailio.address,
        calls=1,
        rate=1,
        hold_ms=60_000,
        wait_for_bye=True,
    ).start()
    live = wait_for(
        "the held call in progress",
        lambda: calls(cluster, a, status="in-progress"),
        20,
        cluster,
    )
    (call,) = live
    (owner_host,) = {
        host for cid, host in kamailio_routes(cluster.kamailio.logs()).items() if cid not in before
    }
    owner = cluster.worker_at(owner_host)
    other = next(w for w in cluster.workers if w is not owner)
    with cluster.client(other) as api:
        r = api.post(f"/calls/{call['id']}/control", json={"type": "end-call"})
    assert r.status_code == 200, r.text
    held_result = held.wait(timeout_s=30)
    assert held_result.exit_code == 0, f"{held_result.errors}\n{cluster.logs()}"
    with cluster.client(other) as api:
        detail = api.get(f"/calls/{call['id']}").json()
    assert detail["status"] == "ended"
    assert detail["ended_reason"] == "manually-ended"

    # --- 3. SIGTERM drains: the calls on the worker end normally, none fails --------------
    load = SippCaller(tmp_path / "drain", cluster.kamailio.address, calls=48, rate=8, hold_ms=6000)
    load.start()
    time.sleep(3.0)  # about 24 calls up, some on c
    routed = kamailio_routes(cluster.kamailio.logs())
    c.terminate()
    terminated = time.monotonic()
    # c refuses new calls at once, and the dispatcher's next probe sees it
    assert wait_for(
        "c answering OPTIONS with 503",
        lambda: options_ping(*c.sip_address, 0.5) == 503,
        3,
        cluster,
    )
    wait_for(
        "Kamailio marking c inactive",
        lambda: cluster.kamailio is not None and cluster.kamailio.active(*c.sip_address) is False,
        5,
        cluster,
    )
    inactive_after = time.monotonic() - terminated
    result = load.wait()
    assert (result.successful, result.failed) == (48, 0), f"{result.errors}\n{cluster.logs()}"
    on_c = [cid for cid, host in routed.items() if host == c.sip_host]
    assert on_c, f"no call was on c when it got SIGTERM: {routed}"
    assert c.wait_exit(30) == 0, c.logs()[-3000:]
    drained = re.search(r"draining.*?live_calls\D+(\d+)", c.logs())
    assert drained, c.logs()[-3000:]
    assert int(drained.group(1)) >= 1, c.logs()[-3000:]
    assert "drained" in c.logs()
    # every call of the run ended normally (the caller's BYE), none was cut
    wait_for(
        "every call of the drain run ended",
        lambda: len(calls(cluster, a, status="ended")) == 1 + 30 + 48,
        20,
        cluster,
    )
    reasons = [x["ended_reason"] for x in calls(cluster, a) if x["id"] != call["id"]]
    assert set(reasons) == {"customer-ended-call"}, reasons
    print(f"drain: c inactive in Kamailio after {inactive_after:.1f}s, {len(on_c)} calls on c")

    # --- 4. rolling restart: c comes back and takes calls -----------------------------------
    cluster.restart(c)
    cluster.wait_dispatching()
    again = SippCaller(tmp_path / "again", cluster.kamailio.address, calls=15, rate=5, hold_ms=500)
    result = again.start().wait()
    assert result.successful == 15, f"{result.errors}\n{cluster.logs()}"
    assert result.answered_by[c.sip_host] >= 1, result.answered_by
    assert b.running
    assert a.running
