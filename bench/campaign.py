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
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
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


def main() -> None:
    try:
        results = asyncio.run(run_all())
    finally:
        drop_postgres_schema_sync()
    out = {
        "benchmark": "campaign",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "dialer": "in-process, answers instantly",
        "scenarios": results,
    }
    target = ROOT / "bench" / "results" / "campaign.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
