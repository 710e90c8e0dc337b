"""Campaign dialer pacing: requested vs achieved calls per second, and the
sustained dial rate, with an in-process dialer that answers every call at once.

Run: ``.venv/bin/python bench/campaign.py`` (about a minute; PostgreSQL too when
``FLIREO_TEST_POSTGRES_URL`` is set). Prints the numbers and writes
``bench/results/campaign.json``.

Each scenario runs one ``CampaignRunner`` with its production defaults on the
real clock against a fresh database; "achieved" is (dials - 1) / (last dial -
first dial). Target: within 2 % of the requested rate up to 50 calls/s, and at
least 100 calls/s sustained (the API's maximum per campaign). The last scenario
asks for 10,000 calls/s: what it achieves is the runner's sustained dial rate
(claim transaction + dialer hand-off + outcome bookkeeping, one process).

``--sip``: the same question through real SIP. Per requested rate, a fresh
``flireo serve`` (SQLite) dials a campaign through a SIP trunk to sipp on
loopback (``tests/telephony/scenarios/uas_campaign.xml``: answers, holds
0.3–1.5 s, hangs up; numbers ending in 7 are busy), with one attempt per lead so
every lead is one call and one INVITE. "achieved" comes from the times sipp
logged the first INVITE of each call; "claim to INVITE" is the delay from the
claim (the stored call's ``created_at``) to that INVITE. One more run pauses a
campaign mid-way and reports how long INVITEs kept arriving after the pause
returned (calls claimed before it) and how many leads were claimed during it
(must be 0). Writes ``bench/results/campaign_sip.json`` (about two minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.* build the organization and databases

from sqlalchemy import func, select  # noqa: E402
from tests.campaigns.world import make_world  # noqa: E402
from tests.db import drop_postgres_schema_sync, postgres_database, sqlite_database  # noqa: E402
from tests.fakes.openai_chat import FakeOpenAI  # noqa: E402
from tests.fakes.server import serve  # noqa: E402
from tests.live.server import LiveServer  # noqa: E402
from tests.live.test_campaign_sipp import (  # noqa: E402
    CampaignHarness,
    aware,
    first_seen,
    invites_received,
    server_env,
    start_carrier,
    stop_carrier,
    stored,
)
from tests.telephony.sipp import Sipp  # noqa: E402

from flireo.campaigns.runner import CampaignRunner  # noqa: E402
from flireo.clock import SystemClock  # noqa: E402
from flireo.services.calls import set_status  # noqa: E402
from flireo.store.db import Database  # noqa: E402
from flireo.store.tables import Call, Campaign, CampaignLead  # noqa: E402

RATES = [1.0, 5.0, 20.0, 50.0, 100.0]
SECONDS = 6.0
#: far above what the runner can do: the achieved rate is its sustained maximum
UNTHROTTLED = 10_000.0
UNTHROTTLED_LEADS = 2000


class InstantAnswer:
    """A dialer whose far end answers at once and hangs up: a call costs only its
    database writes, so the runner's own pacing and overhead are measured."""

    def __init__(self, db: Database, clock: SystemClock) -> None:
        self.db, self.clock = db, clock
        self.dialed_at: list[float] = []

    async def dial(self, call_id: str) -> None:
        self.dialed_at.append(time.monotonic())
        now = self.clock.now()
        async with self.db.transaction() as s:
            call = await s.get(Call, call_id)
            assert call is not None
            set_status(call, "in-progress", now=now)
            set_status(call, "ended", now=now, ended_reason="customer-ended-call")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def zone_where_it_is_midday(now: datetime) -> str:
    offset = (13 - now.hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


async def open_leads(db: Database, campaign_id: str) -> int:
    async with db.read() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(CampaignLead)
                .where(
                    CampaignLead.campaign_id == campaign_id,
                    CampaignLead.status.in_(("pending", "calling")),
                )
            )
            or 0
        )


async def scenario(db: Database, rate: float) -> dict[str, Any]:
    clock = SystemClock()
    world = await make_world(db, number=f"+3185{int(rate * 1000):07d}")
    zone = zone_where_it_is_midday(clock.now())
    n = UNTHROTTLED_LEADS if rate == UNTHROTTLED else max(10, int(rate * SECONDS))
    prefix = f"+3161{int(rate) % 10_000:04d}"
    leads = [{"phone_number": f"{prefix}{i:05d}", "timezone": zone} for i in range(n)]
    cid = await world.campaign(
        leads, status="draft", timezone=zone, calls_per_second=min(rate, 100.0)
    )
    async with db.transaction() as s:  # past the API's limits, straight into the row
        campaign = await s.get(Campaign, cid)
        assert campaign is not None
        campaign.calls_per_second, campaign.max_concurrent_calls = rate, 100_000
    await world.set_status(cid, "scheduled")
    dialer = InstantAnswer(db, clock)
    runner = CampaignRunner(db, dialer, clock, "bench", idle_seconds=0.05)
    await runner.start()
    deadline = time.monotonic() + SECONDS * 3 + 10
    try:
        while await open_leads(db, cid) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    times = sorted(dialer.dialed_at)
    span = times[-1] - times[0]
    achieved = (len(times) - 1) / span if span > 0 else float("nan")
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    return {
        "scenario": "sustained maximum" if rate == UNTHROTTLED else "pacing",
        "requested_cps": rate,
        "achieved_cps": round(achieved, 3),
        "error_pct": round(100 * (achieved - rate) / rate, 2),
        "dials": len(times),
        "leads": n,
        "seconds": round(span, 3),
        "max_dials_in_any_second": busiest,
    }


async def run_backend(name: str, make_db: Any) -> list[dict[str, Any]]:
    rows = []
    for rate in [*RATES, UNTHROTTLED]:
        db = await make_db()
        try:
            row = await scenario(db, rate)
        finally:
            await db.dispose()
        row = {"database": name, **row}
        print(
            f"{name:10s} requested {rate:8.1f}/s  achieved {row['achieved_cps']:8.3f}/s "
            f"({row['error_pct']:+.2f} %)  dials {row['dials']:4d}  "
            f"max in 1 s {row['max_dials_in_any_second']}"
        )
        rows.append(row)
    return rows


async def run_all() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))

        async def sqlite() -> Database:
            path = Path(tmp) / str(next(counter))
            path.mkdir()
            return await sqlite_database(path)

        results += await run_backend("sqlite", sqlite)
    if os.environ.get("FLIREO_TEST_POSTGRES_URL"):
        results += await run_backend("postgresql", postgres_database)
    return results


SIP_RATES = [5.0, 10.0, 20.0, 40.0, 100.0]
SIP_SECONDS = 10.0
#: enough that capacity never limits the rate (calls last about a second)
SIP_CONCURRENCY = 300
SIP_PAUSE_RATE = 20.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sip_scenario(workdir: Path, rate: float, *, pause: bool = False) -> dict[str, Any]:
    """One campaign through ``flireo serve`` to sipp at ``rate`` calls per second."""
    await asyncio.to_thread(workdir.mkdir, parents=True)
    launcher = Sipp(workdir)
    carrier = await start_carrier(launcher)
    server = LiveServer(workdir / "server", env=server_env())
    fake = FakeOpenAI(api_key="sk-fake-openai")
    leads = max(50, int(rate * SIP_SECONDS))
    try:
        with serve(fake.app()) as llm:
            await asyncio.to_thread(server.start)
            harness = CampaignHarness(server, carrier, fake, f"{llm.url}/v1")
            try:
                run = await harness.create_campaign(
                    leads, concurrency=SIP_CONCURRENCY, rate=rate, max_attempts=1
                )
                await harness.run(
                    run, kill_at=[], pause_at=leads // 2 if pause else None, pause_seconds=3.0
                )
            finally:
                await harness.aclose()
                await asyncio.to_thread(server.stop)
        await stop_carrier(carrier)
        lead_rows, calls = await stored(server, run.campaign_id)
        dialed = first_seen(invites_received(carrier))
    finally:
        await launcher.close()
    invite_at = dict(dialed)  # one attempt per lead: one call per number
    times = [at.timestamp() for _, at in dialed]
    span = times[-1] - times[0]
    achieved = (len(times) - 1) / span if span > 0 else float("nan")
    delays = [
        (invite_at[c.caller_phone] - aware(c.created_at)).total_seconds() * 1000
        for c in calls
        if c.caller_phone in invite_at
    ]
    statuses: dict[str, int] = {}
    for lead in lead_rows:
        statuses[lead.status] = statuses.get(lead.status, 0) + 1
    row: dict[str, Any] = {
        "scenario": "pause" if pause else "pacing",
        "requested_cps": rate,
        "achieved_cps": round(achieved, 3),
        "error_pct": round(100 * (achieved - rate) / rate, 2),
        "invites": len(times),
        "leads": leads,
        "seconds": round(span, 3),
        "max_dials_in_any_second": max(sum(1 for u in times if t <= u < t + 1.0) for t in times),
        "claim_to_invite_ms": {
            "p50": round(statistics.median(delays), 1),
            "p95": round(percentile(delays, 0.95), 1),
            "max": round(max(delays), 1),
        },
        "lead_statuses": statuses,
    }
    if pause:
        assert run.paused_at is not None
        assert run.resumed_at is not None
        after = [at for _, at in dialed if run.paused_at <= at < run.resumed_at]
        row["pause"] = {
            "seconds": round((run.resumed_at - run.paused_at).total_seconds(), 3),
            "invites_after_pause": len(after),
            "last_invite_after_pause_ms": round(
                (max(after) - run.paused_at).total_seconds() * 1000, 1
            )
            if after
            else None,
            "leads_claimed_while_paused": sum(
                1 for c in calls if run.paused_at < aware(c.created_at) < run.resumed_at
            ),
            "invites_after_resume": sum(1 for _, at in dialed if at >= run.resumed_at),
        }
    return row


async def run_sip() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, rate in enumerate(SIP_RATES):
            row = await sip_scenario(Path(tmp) / f"rate-{i}", rate)
            d = row["claim_to_invite_ms"]
            print(
                f"sip  requested {rate:6.1f}/s  achieved {row['achieved_cps']:7.3f}/s "
                f"({row['error_pct']:+.2f} %)  invites {row['invites']:4d}  "
                f"max in 1 s {row['max_dials_in_any_second']:3d}  "
                f"claim→INVITE p50 {d['p50']} ms p95 {d['p95']} ms"
            )
            rows.append(row)
        row = await sip_scenario(Path(tmp) / "pause", SIP_PAUSE_RATE, pause=True)
        print(f"sip  pause at {SIP_PAUSE_RATE}/s: {row['pause']}")
        rows.append(row)
    return rows


def write(name: str, out: dict[str, Any]) -> None:
    target = ROOT / "bench" / "results" / name
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sip", action="store_true", help="dial through flireo serve and SIP to sipp"
    )
    args = parser.parse_args()
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    if args.sip:
        write(
            "campaign_sip.json",
            {
                "benchmark": "campaign-sip",
                "machine": machine,
                "dialer": "flireo serve (SQLite) → SIP/UDP trunk → sipp on loopback",
                "concurrency": SIP_CONCURRENCY,
                "scenarios": asyncio.run(run_sip()),
                # other programs on the machine take CPU from the server and sipp
                "load_average_1min_after": round(os.getloadavg()[0], 2),
            },
        )
        return
    try:
        results = asyncio.run(run_all())
    finally:
        drop_postgres_schema_sync()
    write(
        "campaign.json",
        {
            "benchmark": "campaign",
            "machine": machine,
            "dialer": "in-process, answers instantly",
            "scenarios": results,
        },
    )


if __name__ == "__main__":
    main()
