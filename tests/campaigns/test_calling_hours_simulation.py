"""48 simulated hours, three campaigns, leads in seven time zones, and the night
Europe moves its clocks forward: not one call outside a calling window."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flireo.campaigns.runner import CampaignRunner
from flireo.clock import ManualClock
from flireo.store.db import Database
from tests.campaigns.carrier import SimulatedCarrier
from tests.campaigns.sim import drive
from tests.campaigns.world import make_world

#: Friday 27 March 2026, 18:00 UTC; Europe springs forward Sunday 29 March 01:00 UTC
START = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)

#: phone number → (zones the test expects the lead to be in, lead timezone field)
LEADS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "+31612000001": (("Europe/Amsterdam",), None),
    "+31612000002": (("Europe/Amsterdam",), None),
    "+31612000003": (("Europe/Amsterdam",), None),
    "+31612000004": (("Asia/Kolkata",), "Asia/Kolkata"),
    "+442071000001": (("Europe/London",), None),
    "+442071000002": (("Europe/London",), None),
    "+12125550101": (("America/New_York",), None),
    "+12125550102": (("America/New_York",), None),
    "+13105550101": (("America/Los_Angeles",), None),
    "+13105550102": (("America/Los_Angeles",), None),
    "+17015550101": (("America/Denver", "America/North_Dakota/Center"), None),
    "+81312345678": (("Asia/Tokyo",), None),
    "+61298765432": (("Australia/Sydney",), None),
    "+61298765433": (("Australia/Sydney",), None),
}
CAMPAIGNS = {
    # name: (start, end, zone, lead numbers)
    "amsterdam office hours": (
        "09:00",
        "17:00",
        "Europe/Amsterdam",
        [
            "+31612000001",
            "+31612000002",
            "+31612000003",
            "+31612000004",
            "+442071000001",
            "+12125550101",
            "+17015550101",
            "+81312345678",
        ],
    ),
    "us evenings": (
        "17:00",
        "22:30",
        "America/New_York",
        ["+12125550102", "+13105550101", "+442071000002"],
    ),
    "london night owls": (
        "20:00",
        "02:00",
        "Europe/London",
        ["+61298765432", "+61298765433", "+13105550102"],
    ),
}


def inside(at: datetime, start: time, end: time, zone: str) -> bool:
    local = at.astimezone(ZoneInfo(zone)).time()
    return start <= local < end if start < end else (local >= start or local < end)


async def test_48_hours_across_zones_and_a_dst_change_never_call_outside_the_window(
    db: Database,
) -> None:
    # leads abroad: the dial policy must allow their countries (default: the number's, NL)
    world = await make_world(db, outbound_countries=["NL", "GB", "US", "JP", "AU"])
    clock = ManualClock(START)
    campaign_of: dict[str, str] = {}
    for name, (begin, end, zone, phones) in CAMPAIGNS.items():
        cid = await world.campaign(
            [{"phone_number": p, "timezone": LEADS[p][1]} for p in phones],
            name=name,
            schedule_start_time=begin,
            schedule_end_time=end,
            timezone=zone,
            max_attempts=8,
            retry_delay_seconds=4 * 3600,
            calls_per_second=0.2,
            max_concurrent_calls=2,
        )
        campaign_of[cid] = name
    # nobody picks up: retries 4 h apart wander across windows, nights and days
    script = {p: ["no-answer"] * 5 for p in LEADS}
    carrier = SimulatedCarrier(db, clock, script=script, talk_seconds=120, ring_seconds=30)
    runner = CampaignRunner(db, carrier, clock, "node-a", poll_seconds=5, idle_seconds=900)
    await drive(runner, clock, 48 * 3600, carrier, max_step=900)

    outside = []
    for d in carrier.dials:
        assert d.campaign_id is not None
        begin, end, zone, _ = CAMPAIGNS[campaign_of[d.campaign_id]]
        allowed = inside(d.at, time.fromisoformat(begin), time.fromisoformat(end), zone) and all(
            inside(d.at, time(8), time(21), z) for z in LEADS[d.phone][0]
        )
        if not allowed:
            outside.append((d.phone, d.at.isoformat()))
    assert outside == []

    per_campaign = Counter(campaign_of[d.campaign_id or ""] for d in carrier.dials)
    assert per_campaign["amsterdam office hours"] >= 15
    assert per_campaign["us evenings"] >= 4
    assert per_campaign["london night owls"] >= 6
    # the Amsterdam window opened at 07:00 UTC on the first day of summer time
    sunday = [d.at for d in carrier.dials if campaign_of[d.campaign_id or ""].startswith("ams")]
    first_sunday = min(t for t in sunday if t.date() == START.date() + timedelta(days=2))
    assert first_sunday == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    # London's night window closed at 01:00 UTC that night (02:00 BST), not 02:00 UTC
    night = [d.at for d in carrier.dials if campaign_of[d.campaign_id or ""].startswith("lon")]
    last_hour = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert any(last_hour <= t < last_hour + timedelta(hours=1) for t in night)
