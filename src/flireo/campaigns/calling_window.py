"""When a lead may be called: pure functions of an aware UTC instant.

A call is allowed when the campaign's daily window (``schedule_start_time`` to
``schedule_end_time`` in the campaign's time zone) is open AND it is between
08:00 and 21:00 on the wall clock of every time zone the lead may be in.

A daily window is read off the wall clock: an instant is inside when the local
time there is in ``[start, end)`` (``start > end`` is a window across midnight).
That settles the DST edges: on a spring-forward day a window starting at a
skipped time (02:30) opens when the clocks jump (03:00); on a fall-back day the
repeated hour is inside or outside exactly as its wall-clock time says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

#: callers are only ever called between these local times
LEAD_LOCAL_START = time(8, 0)
LEAD_LOCAL_END = time(21, 0)
#: how far ahead :func:`next_call_time` looks
DEFAULT_HORIZON = timedelta(days=8)

_HOUR = timedelta(hours=1)


def parse_clock_time(value: str) -> time:
    """``HH:MM:SS`` or ``HH:MM`` as a :class:`time`."""
    return time.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """``[start, end)`` on the wall clock of ``zone``; ``start > end`` spans midnight."""

    start: time
    end: time
    zone: ZoneInfo

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def openings(self, since: datetime, until: datetime) -> list[datetime]:
        """Instants in ``[since, until]`` where this window may open: where the wall
        clock reads ``start``, and the zone's offset changes (a jump can open it)."""
        first = since.astimezone(self.zone).date() - timedelta(days=1)
        last = until.astimezone(self.zone).date() + timedelta(days=1)
        found: list[datetime] = []
        day = first
        while day <= last:
            found.extend(_wall_instants(day, self.start, self.zone))
            day += timedelta(days=1)
        found.extend(_transitions(self.zone, since, until))
        return [t for t in found if since <= t <= until]


def _wall_instants(day: date, at: time, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants whose wall-clock time in ``zone`` is ``day at``: none in a
    DST gap, two in a repeated hour."""
    naive = datetime.combine(day, at)
    out = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == naive and instant not in out:
            out.append(instant)
    return out


def _transitions(zone: ZoneInfo, since: datetime, until: datetime) -> list[datetime]:
    first_day = int(since.timestamp()) // 86400
    last_day = int(until.timestamp()) // 86400
    out: list[datetime] = []
    for day in range(first_day, last_day + 1):
        out.extend(_transitions_in_day(zone.key, day * 24))
    return out


@lru_cache(maxsize=8192)
def _transitions_in_day(zone_key: str, first_hour: int) -> tuple[datetime, ...]:
    """UTC offset changes of ``zone_key`` in the 24 hours from epoch hour
    ``first_hour`` (hourly sampling, then bisection to the second)."""
    zone = ZoneInfo(zone_key)
    found = []
    t = datetime.fromtimestamp(first_hour * 3600, UTC)
    offset = t.astimezone(zone).utcoffset()
    for _ in range(24):
        nxt = t + _HOUR
        nxt_offset = nxt.astimezone(zone).utcoffset()
        if nxt_offset != offset:
            lo, hi = int(t.timestamp()), int(nxt.timestamp())
            while hi - lo > 1:  # offset(lo) is the old one, offset(hi) the new one
                mid = (lo + hi) // 2
                if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            found.append(datetime.fromtimestamp(hi, UTC))
        t, offset = nxt, nxt_offset
    return tuple(found)


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """All the daily windows that must be open together to call one lead."""

    windows: tuple[DailyWindow, ...]

    def allows(self, at: datetime) -> bool:
        return all(w.contains(at) for w in self.windows)

    def next_opening(self, at: datetime, horizon: timedelta = DEFAULT_HORIZON) -> datetime | None:
        """The first instant ``>= at`` when every window is open; None if there is
        none within ``horizon``. The intersection opens where one of the windows
        opens, so only those candidates need checking."""
        if self.allows(at):
            return at
        until = at + horizon
        candidates = sorted({t for w in self.windows for t in w.openings(at, until)})
        return next((t for t in candidates if self.allows(t)), None)


def calling_window(
    *,
    campaign_start: str,
    campaign_end: str,
    campaign_zone: str,
    lead_zones: tuple[str, ...],
) -> CallingWindow:
    """The campaign's window plus 08:00–21:00 in each of the lead's zones."""
    windows = [
        DailyWindow(
            parse_clock_time(campaign_start),
            parse_clock_time(campaign_end),
            ZoneInfo(campaign_zone),
        )
    ]
    windows += [DailyWindow(LEAD_LOCAL_START, LEAD_LOCAL_END, ZoneInfo(z)) for z in lead_zones]
    return CallingWindow(tuple(windows))


def campaign_window(*, start: str, end: str, zone: str) -> CallingWindow:
    """Only the campaign's own daily window (whether the campaign is open at all)."""
    return CallingWindow(
        (DailyWindow(parse_clock_time(start), parse_clock_time(end), ZoneInfo(zone)),)
    )


def may_call(at: datetime, window: CallingWindow) -> bool:
    """Whether a call may start at the aware instant ``at``."""
    return window.allows(at)


def next_call_time(
    at: datetime, window: CallingWindow, horizon: timedelta = DEFAULT_HORIZON
) -> datetime | None:
    """The first instant at or after ``at`` when a call may start (None: not within
    ``horizon``)."""
    return window.next_opening(at, horizon)
