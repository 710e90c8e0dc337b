"""A 300-lead campaign on three workers behind Kamailio, one SIGKILLed mid-way
(issue 13): no lead is dialed twice.

Every worker runs the campaign runner on the same PostgreSQL database (leads
claimed with leases, ``FOR UPDATE SKIP LOCKED``). Their dials leave through
Kamailio as outbound proxy (the trunk's host is Kamailio; dispatcher set 2 is
the carrier), so the carrier, sipp, sees one address and its message trace
holds every INVITE. When a third of the leads are final, one worker is
SIGKILLed. The campaign must still complete, and from sipp's trace (distinct
Call-IDs of INVITEs per dialed number) and the database:

* no number got INVITEs of two calls;
* every lead is final with one attempt and one call record; the calls the
  dead worker owned ended ``worker-died`` (final, never dialed again);
* every call the carrier saw came from a lead of the campaign.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flireo.domain.campaigns import FINAL_LEAD_STATUSES
from tests.cluster.conftest import cluster_services
from tests.cluster.kamailio import Cluster, SippCarrier, calls, invites_per_number

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

LEADS = 300
CONCURRENCY = 30
RATE = 20.0
KILL_AT = 100


def zone_where_it_is_midday(now: datetime) -> str:
    """A fixed-offset zone in which ``now`` is around 13:00 (inside any calling window)."""
    offset = (13 - now.hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


@pytest.fixture
def carrier(tmp_path: Path) -> Iterator[SippCarrier]:
    sipp = SippCarrier(tmp_path / "carrier").start()
    try:
        yield sipp
    finally:
        sipp.stop()


@pytest.fixture
def campaign_cluster(tmp_path: Path, carrier: SippCarrier) -> Iterator[Cluster]:
    pg, redis = cluster_services()
    cluster = Cluster(tmp_path, pg, redis, size=3, carrier=carrier.address)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def create_campaign(cluster: Cluster) -> tuple[str, list[str]]:
    zone = zone_where_it_is_midday(datetime.now(UTC))
    with cluster.client(cluster.workers[0]) as api:
        r = api.post(
            "/campaigns",
            json={
                "name": "Cluster campaign",
                "agent_id": cluster.ids["agent"],
                "number_id": cluster.ids["number"],
                "schedule_start_time": "00:00:00",
                "schedule_end_time": "23:59:59",
                "timezone": zone,
                "max_concurrent_calls": CONCURRENCY,
                "calls_per_second": RATE,
                "max_attempts": 1,
            },
        )
        assert r.status_code == 201, r.text
        cid: str = r.json()["campaign"]["id"]
        numbers = [f"+3162{i:07d}" for i in range(LEADS)]
        r = api.post(
            f"/campaigns/{cid}/leads",
            json={"leads": [{"phone_number": n, "timezone": zone} for n in numbers]},
        )
        assert r.status_code in (200, 201), r.text
    return cid, numbers


def campaign(cluster: Cluster, cid: str) -> dict[str, Any]:
    worker = next(w for w in cluster.workers if w.running)
    with cluster.client(worker) as api:
        r = api.get(f"/campaigns/{cid}")
        r.raise_for_status()
        body: dict[str, Any] = r.json()["campaign"]
        return body


def leads(cluster: Cluster, cid: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    worker = next(w for w in cluster.workers if w.running)
    with cluster.client(worker) as api:
        while True:
            r = api.get(f"/campaigns/{cid}/leads", params={"limit": 100, "offset": len(out)})
            r.raise_for_status()
            page = r.json()
            out += page["leads"]
            if len(out) >= page["pagination"]["total"] or not page["leads"]:
                return out


def test_300_leads_one_worker_killed_no_lead_dialed_twice(
    campaign_cluster: Cluster, carrier: SippCarrier
) -> None:
    cluster = campaign_cluster
    victim = cluster.workers[1]
    cid, numbers = create_campaign(cluster)
    with cluster.client(cluster.workers[0]) as api:
        r = api.patch(f"/campaigns/{cid}", json={"status": "scheduled"})
        assert r.status_code == 200, r.text
    started = time.monotonic()
    killed_at: float | None = None
    state: dict[str, Any] = {}
    while time.monotonic() - started < 150:
        state = campaign(cluster, cid)
        if state["status"] == "completed":
            break
        if killed_at is None and int(state["completed_leads"]) >= KILL_AT:
            victim.kill()
            killed_at = time.monotonic() - started
        time.sleep(0.3)
    assert state.get("status") == "completed", f"{state}\n{cluster.logs()}"
    assert killed_at is not None, "the campaign completed before the kill"
    took = time.monotonic() - started

    all_leads = leads(cluster, cid)
    all_calls = calls(cluster, cluster.workers[0], campaign_id=cid)
    trace = carrier.stop()
    seen = invites_per_number(trace)

    # --- the carrier's view: no number dialed twice ----------------------------------------
    assert seen, "the carrier saw no INVITE"
    twice = {n: ids for n, ids in seen.items() if len(ids) > 1}
    assert twice == {}, twice
    assert set(seen) <= set(numbers), set(seen) - set(numbers)

    # --- the database's view: every lead final, one attempt, one call -----------------------
    assert len(all_leads) == LEADS
    assert all(lead["status"] in FINAL_LEAD_STATUSES for lead in all_leads), Counter(
        lead["status"] for lead in all_leads
    )
    assert max(lead["attempts"] for lead in all_leads) == 1
    by_id = {call["id"]: call for call in all_calls}
    assert len(by_id) == len(all_calls) == LEADS, len(all_calls)
    assert {lead["call_id"] for lead in all_leads} == set(by_id)
    reasons = Counter(call["ended_reason"] for call in all_calls)
    assert reasons["worker-died"] >= 1, reasons  # the kill cut calls in progress
    assert {call["status"] for call in all_calls} <= {"ended", "failed"}
    # every call that did not die with its worker reached the carrier
    dialed = {
        lead["phone_number"]
        for lead in all_leads
        if by_id[lead["call_id"]]["ended_reason"] != "worker-died"
    }
    unseen = Counter(
        (by_id[lead["call_id"]]["ended_reason"], str(by_id[lead["call_id"]].get("error"))[:200])
        for lead in all_leads
        if lead["phone_number"] in dialed - set(seen)
    )
    assert dialed <= set(seen), (sorted(dialed - set(seen))[:5], unseen)
    print(
        f"{len(seen)} numbers dialed once each, {LEADS - len(seen)} never reached the carrier; "
        f"ended reasons {dict(reasons)}; kill at {killed_at:.1f}s, completed after {took:.1f}s"
    )
