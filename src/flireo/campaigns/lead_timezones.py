"""Which time zones a lead may be in: the one given on the lead, else every zone
``phonenumbers`` maps the number to (a US area code or a mobile range can span
several), else the campaign's own zone."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone


@lru_cache(maxsize=65536)
def zones_for_number(phone_number: str) -> tuple[str, ...]:
    """The IANA zones of an E.164 number (empty when unknown or unparseable)."""
    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = []
    for name in pn_timezone.time_zones_for_number(parsed):
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue  # "Etc/Unknown" and zones this system's tz database lacks
        zones.append(name)
    return tuple(zones)


def lead_zones(phone_number: str, lead_timezone: str | None, fallback: str) -> tuple[str, ...]:
    """The zones whose 08:00–21:00 must all hold before calling this lead."""
    if lead_timezone:
        return (lead_timezone,)
    return zones_for_number(phone_number) or (fallback,)
