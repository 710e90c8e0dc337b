"""Calling-window math: campaign window ∧ 08:00–21:00 in every zone of the lead."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from flireo.campaigns.calling_window import (
    CallingWindow,
    DailyWindow,
    calling_window,
    campaign_window,
    may_call,
    next_call_time,
    parse_clock_time,
)
from flireo.campaigns.lead_timezones import lead_zones, zones_for_number


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def amsterdam_9_to_5(*zones: str) -> CallingWindow:
    return calling_window(
        campaign_start="09:00:00",
        campaign_end="17:00:00",
        campaign_zone="Europe/Amsterdam",
        lead_zones=zones or ("Europe/Amsterdam",),
    )


def test_amsterdam_window_opens_an_hour_earlier_in_utc_after_spring_forward() -> None:
    w = amsterdam_9_to_5()
    # Saturday 28 March 2026: CET, 09:00 local = 08:00 UTC
    assert not may_call(utc(2026, 3, 28, 7, 59, 59), w)
    assert may_call(utc(2026, 3, 28, 8), w)
    # Sunday 29 March: clocks jump 02:00 → 03:00; 09:00 CEST = 07:00 UTC
    assert next_call_time(utc(2026, 3, 28, 15, 59), w) == utc(2026, 3, 28, 15, 59)
    assert not may_call(utc(2026, 3, 28, 16), w)  # 17:00 CET
    assert next_call_time(utc(2026, 3, 28, 16), w) == utc(2026, 3, 29, 7)
    assert may_call(utc(2026, 3, 29, 14, 59, 59), w)
    assert not may_call(utc(2026, 3, 29, 15), w)  # 17:00 CEST


def test_amsterdam_window_on_the_fall_back_day() -> None:
    w = amsterdam_9_to_5()
    assert next_call_time(utc(2026, 10, 24, 16), w) == utc(2026, 10, 25, 8)  # 09:00 CET
    assert may_call(utc(2026, 10, 24, 7), w)  # Saturday 09:00 CEST
    assert not may_call(utc(2026, 10, 25, 7, 30), w)  # Sunday 08:30 CET
    assert not may_call(utc(2026, 10, 25, 16), w)  # Sunday 17:00 CET


def test_window_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    w = campaign_window(start="02:30", end="04:00", zone="Europe/Amsterdam")
    # 01:00 UTC: 02:00 CET becomes 03:00 CEST, which is past 02:30
    assert next_call_time(utc(2026, 3, 29, 0), w) == utc(2026, 3, 29, 1)
    assert not may_call(utc(2026, 3, 29, 0, 59, 59), w)
    assert not may_call(utc(2026, 3, 29, 2), w)  # 04:00 CEST
    # a normal day: 02:30 CET = 01:30 UTC
    assert next_call_time(utc(2026, 3, 27, 12), w) == utc(2026, 3, 28, 1, 30)


def test_window_in_the_repeated_hour_opens_twice_on_fall_back_night() -> None:
    w = campaign_window(start="02:15", end="02:45", zone="Europe/Amsterdam")
    assert next_call_time(utc(2026, 10, 25, 0), w) == utc(2026, 10, 25, 0, 15)  # CEST
    assert not may_call(utc(2026, 10, 25, 0, 50), w)
    assert next_call_time(utc(2026, 10, 25, 0, 50), w) == utc(2026, 10, 25, 1, 15)  # CET
    assert next_call_time(utc(2026, 10, 25, 1, 50), w) == utc(2026, 10, 26, 1, 15)


def test_new_york_spring_forward_cuts_a_window_that_ends_in_the_gap() -> None:
    w = campaign_window(start="01:30", end="02:30", zone="America/New_York")
    # 8 March 2026: 01:30 EST = 06:30 UTC; at 07:00 UTC the clock reads 03:00
    assert next_call_time(utc(2026, 3, 8, 0), w) == utc(2026, 3, 8, 6, 30)
    assert may_call(utc(2026, 3, 8, 6, 59, 59), w)
    assert not may_call(utc(2026, 3, 8, 7), w)
    assert next_call_time(utc(2026, 3, 8, 7), w) == utc(2026, 3, 9, 5, 30)  # 01:30 EDT


def test_new_york_fall_back_lead_window() -> None:
    w = calling_window(
        campaign_start="00:00",
        campaign_end="23:59:59",
        campaign_zone="UTC",
        lead_zones=("America/New_York",),
    )
    assert may_call(utc(2026, 10, 31, 12), w)  # 08:00 EDT
    assert not may_call(utc(2026, 11, 1, 12, 30), w)  # 07:30 EST
    assert next_call_time(utc(2026, 11, 1, 1, 30), w) == utc(2026, 11, 1, 13)  # 08:00 EST
    assert not may_call(utc(2026, 11, 2, 2), w)  # 21:00 EST


def test_window_across_midnight() -> None:
    w = campaign_window(start="22:00", end="02:00", zone="America/New_York")
    assert may_call(utc(2026, 6, 2, 3), w)  # 23:00 EDT
    assert may_call(utc(2026, 6, 2, 5, 59), w)  # 01:59
    assert not may_call(utc(2026, 6, 2, 6), w)
    assert next_call_time(utc(2026, 6, 2, 6), w) == utc(2026, 6, 3, 2)


def test_lead_in_new_york_for_an_amsterdam_campaign_follows_both_clocks() -> None:
    w = amsterdam_9_to_5("America/New_York")
    # winter: 09–17 CET = 08–16 UTC, 08–21 EST = 13–02 UTC → 13:00–16:00 UTC
    assert not may_call(utc(2026, 3, 6, 12), w)
    assert next_call_time(utc(2026, 3, 6, 12), w) == utc(2026, 3, 6, 13)
    # 9 March: New York on EDT, Amsterdam still on CET → opens at 12:00 UTC
    assert may_call(utc(2026, 3, 9, 12), w)
    assert not may_call(utc(2026, 3, 9, 16), w)
    # after the European switch too: 07:00–15:00 UTC ∧ 12:00–01:00 UTC
    assert next_call_time(utc(2026, 3, 30, 6), w) == utc(2026, 3, 30, 12)
    assert not may_call(utc(2026, 3, 30, 15), w)


def test_lead_that_is_never_inside_both_windows_has_no_next_time() -> None:
    w = amsterdam_9_to_5("Pacific/Honolulu")  # 08:00 HST = 18:00 UTC, after 17:00 CET
    assert next_call_time(utc(2026, 1, 5, 12), w) is None


def test_number_spanning_two_zones_must_be_inside_both() -> None:
    zones = zones_for_number("+17015550100")
    assert set(zones) == {"America/Denver", "America/North_Dakota/Center"}
    w = calling_window(
        campaign_start="00:00", campaign_end="23:59:59", campaign_zone="UTC", lead_zones=zones
    )
    # 14:30 UTC in January: 08:30 in North Dakota but 07:30 in Denver
    assert not may_call(utc(2026, 1, 14, 14, 30), w)
    assert next_call_time(utc(2026, 1, 14, 14, 30), w) == utc(2026, 1, 14, 15)
    assert may_call(utc(2026, 1, 15, 2, 59), w)  # 20:59 CST, 19:59 MST
    assert not may_call(utc(2026, 1, 15, 3), w)  # 21:00 in North Dakota


def test_lead_zones_come_from_the_lead_then_the_number_then_the_campaign() -> None:
    assert lead_zones("+31612345678", "Asia/Tokyo", "Europe/Amsterdam") == ("Asia/Tokyo",)
    assert lead_zones("+31612345678", None, "America/Chicago") == ("Europe/Amsterdam",)
    assert lead_zones("+12125551234", None, "Europe/Amsterdam") == ("America/New_York",)
    assert lead_zones("+15555550100", None, "Europe/Paris") == ("Europe/Paris",)  # unknown
    assert len(lead_zones("+61412345678", None, "UTC")) > 3  # an Australian mobile


def _brute_next(w: CallingWindow, start: datetime, limit: timedelta) -> datetime | None:
    t = start
    while t <= start + limit:
        if w.allows(t):
            return t
        t += timedelta(minutes=1)
    return None


ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
STARTS = [
    utc(2026, 3, 7, 23, 0),
    utc(2026, 3, 28, 22, 17),
    utc(2026, 10, 3, 14, 3),
    utc(2026, 10, 24, 23, 41),
    utc(2026, 11, 1, 4, 59),
]


@pytest.mark.parametrize(("campaign_zone", "lead_zone"), list(itertools.permutations(ZONES[:3], 2)))
def test_next_call_time_matches_a_minute_by_minute_scan(campaign_zone: str, lead_zone: str) -> None:
    for start_at, (begin, end) in itertools.product(
        STARTS, [("09:00", "17:00"), ("01:30", "03:15"), ("20:00", "02:30")]
    ):
        w = calling_window(
            campaign_start=begin,
            campaign_end=end,
            campaign_zone=campaign_zone,
            lead_zones=(lead_zone,),
        )
        expected = _brute_next(w, start_at, timedelta(days=3))
        got = next_call_time(start_at, w, timedelta(days=3))
        assert got == expected, (campaign_zone, lead_zone, start_at, begin, end)


def test_daily_window_reads_the_wall_clock() -> None:
    w = DailyWindow(parse_clock_time("08:00:00"), parse_clock_time("21:00"), ZoneInfo("Asia/Tokyo"))
    assert w.contains(utc(2026, 7, 1, 0))  # 09:00 JST
    assert not w.contains(utc(2026, 7, 1, 12))  # 21:00 JST
