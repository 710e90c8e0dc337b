"""Toll-fraud guards: where and how much an organization may call out.

Every number the platform dials for an organization — ``POST /calls/outbound``,
campaign leads, and transfers (the control ``transfer`` command and the
``transferCall`` tool, to a phone number or a ``sip:+<E.164>@...`` URI) —
passes :func:`check_destination`; new outbound calls also pass
:func:`check_capacity`. The policy (``organizations`` columns, ``PATCH
/account/dial-policy``):

=================================  ==============================================
``outbound_countries``             ISO 3166 regions it may call; ``None`` (default):
                                   the regions of the organization's own numbers
``allow_premium_destinations``     ``false`` (default): premium-rate, shared-cost
                                   and personal numbers (``phonenumbers`` types
                                   PREMIUM_RATE, SHARED_COST, PERSONAL_NUMBER) are
                                   refused
``daily_outbound_minutes``         outbound minutes per UTC day (``None``: the
                                   server's ``FLIREO_DEFAULT_DAILY_OUTBOUND_MINUTES``)
``max_outbound_calls``             outbound calls at once (``None``:
                                   ``FLIREO_DEFAULT_MAX_OUTBOUND_CALLS``)
=================================  ==============================================

A refusal is a :class:`DialRefused` (HTTP 403, ``code`` below) and, for a new
call, a call record ``rejected`` with the matching ``ended_reason``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.account import DialPolicyOut, DialPolicyUpdate
from flireo.domain.calls import ACTIVE_STATUSES
from flireo.errors import FlireoError, InvalidRequest, NotFound
from flireo.settings import Settings
from flireo.store.tables import Call, Organization, PhoneNumber, UsageLog

#: number types refused unless ``allow_premium_destinations``: the caller pays
#: the callee (premium rate), shares the cost, or reaches a "follow me" number
#: that is routinely used to pump traffic (UK 070)
PREMIUM_TYPES = frozenset(
    {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.PERSONAL_NUMBER}
)


class RefusalCode:
    """``error.code`` of a refusal (HTTP 403) and the ``ended_reason`` it records."""

    COUNTRY = "destination_country_not_allowed"
    PREMIUM = "premium_destination_not_allowed"
    DAILY_MINUTES = "daily_outbound_minutes_exceeded"
    CONCURRENCY = "outbound_concurrency_limit_reached"


ENDED_REASONS = {
    RefusalCode.COUNTRY: "call-start-error-destination-country-not-allowed",
    RefusalCode.PREMIUM: "call-start-error-premium-destination-not-allowed",
    RefusalCode.DAILY_MINUTES: "call-start-error-outbound-daily-limit",
    RefusalCode.CONCURRENCY: "call-start-error-outbound-concurrency-limit",
}


class DialRefused(FlireoError):
    """The organization's dial policy refuses this number or this call."""

    status = 403
    type = "permission_error"

    def __init__(self, message: str, *, code: str, param: str | None = "destination") -> None:
        super().__init__(message, param=param, code=code)

    @property
    def ended_reason(self) -> str:
        return ENDED_REASONS[self.code]


@dataclass(frozen=True)
class DialPolicy:
    countries: frozenset[str]
    #: True when ``countries`` came from the organization's own numbers
    countries_from_numbers: bool
    allow_premium: bool
    #: None: no cap (the campaign runner of a process without server settings)
    daily_minutes: int | None
    max_outbound_calls: int | None


def region_of(number: phonenumbers.PhoneNumber) -> str | None:
    """The ISO region of a parsed number (its calling code's main region when the
    number itself is not in ``phonenumbers``' metadata)."""
    region = phonenumbers.region_code_for_number(number)
    if region and region != "ZZ":
        return region
    main = phonenumbers.region_code_for_country_code(number.country_code or 0)
    return main if main and main != "ZZ" else None


def parse(destination: str) -> phonenumbers.PhoneNumber | None:
    """An E.164 number, or the E.164 user part of a ``sip:``/``sips:`` URI; None otherwise."""
    text = destination.strip()
    if text.startswith(("sip:", "sips:")):
        user = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
        if not user.startswith("+"):
            return None
        text = user
    if not text.startswith("+"):
        return None
    try:
        return phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None


async def policy_for(
    session: AsyncSession, org: Organization, settings: Settings | None
) -> DialPolicy:
    """The organization's policy; its unset caps take ``settings``' defaults (none
    when ``settings`` is None)."""
    if org.outbound_countries is not None:
        countries = frozenset(str(c).upper() for c in org.outbound_countries)
        from_numbers = False
    else:
        owned = (
            await session.execute(
                select(PhoneNumber.phone_number).where(PhoneNumber.org_id == org.id)
            )
        ).scalars()
        found = set()
        for own in owned:
            parsed = parse(own)
            region = region_of(parsed) if parsed is not None else None
            if region:
                found.add(region)
        countries, from_numbers = frozenset(found), True
    return DialPolicy(
        countries=countries,
        countries_from_numbers=from_numbers,
        allow_premium=bool(org.allow_premium_destinations),
        daily_minutes=org.daily_outbound_minutes
        if org.daily_outbound_minutes is not None
        else (settings.default_daily_outbound_minutes if settings is not None else None),
        max_outbound_calls=org.max_outbound_calls
        if org.max_outbound_calls is not None
        else (settings.default_max_outbound_calls if settings is not None else None),
    )


def check_destination(policy: DialPolicy, destination: str, *, param: str = "destination") -> None:
    """Raise :class:`DialRefused` when ``policy`` forbids calling ``destination``.
    A SIP URI without an E.164 user part is not a phone number: not judged here."""
    number = parse(destination)
    if number is None:
        return
    region = region_of(number)
    if region is None or region not in policy.countries:
        allowed = ", ".join(sorted(policy.countries)) or "none"
        source = " (the countries of your numbers)" if policy.countries_from_numbers else ""
        raise DialRefused(
            f"Calls to {region or 'this destination'} are not allowed for this organization: "
            f"outbound countries are {allowed}{source}; change them with "
            "PATCH /account/dial-policy (outbound_countries)",
            code=RefusalCode.COUNTRY,
            param=param,
        )
    kind = phonenumbers.number_type(number)
    if kind in PREMIUM_TYPES and not policy.allow_premium:
        raise DialRefused(
            f"{destination} is a {kind_name(kind)} number; premium-rate, shared-cost and "
            "personal numbers are refused unless allow_premium_destinations is set "
            "(PATCH /account/dial-policy)",
            code=RefusalCode.PREMIUM,
            param=param,
        )


def kind_name(kind: int) -> str:
    return {
        PhoneNumberType.PREMIUM_RATE: "premium-rate",
        PhoneNumberType.SHARED_COST: "shared-cost",
        PhoneNumberType.PERSONAL_NUMBER: "personal",
    }.get(kind, "special")


def day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)


async def outbound_minutes_today(session: AsyncSession, org_id: str, now: datetime) -> int:
    """Billed minutes of the organization's outbound calls logged this UTC day."""
    start = day_start(now)
    total = await session.execute(
        select(func.coalesce(func.sum(UsageLog.minutes_used), 0)).where(
            UsageLog.org_id == org_id,
            UsageLog.direction == "outbound",
            UsageLog.created_at >= start,
            UsageLog.created_at < start + timedelta(days=1),
        )
    )
    return int(total.scalar_one())


async def active_outbound_calls(session: AsyncSession, org_id: str) -> int:
    count = await session.execute(
        select(func.count())
        .select_from(Call)
        .where(
            Call.org_id == org_id,
            Call.direction == "outbound",
            Call.status.in_(ACTIVE_STATUSES),
        )
    )
    return int(count.scalar_one())


async def outbound_room(session: AsyncSession, org_id: str, policy: DialPolicy) -> int | None:
    """How many more outbound calls may start now (None: no cap)."""
    if policy.max_outbound_calls is None:
        return None
    return policy.max_outbound_calls - await active_outbound_calls(session, org_id)


async def check_capacity(
    session: AsyncSession, org_id: str, policy: DialPolicy, now: datetime
) -> None:
    """Raise :class:`DialRefused` when one more outbound call would pass a cap."""
    await check_daily_minutes(session, org_id, policy, now)
    room = await outbound_room(session, org_id, policy)
    if room is not None and room <= 0 and policy.max_outbound_calls is not None:
        active = policy.max_outbound_calls - room
        raise DialRefused(
            f"The organization already has {active} outbound calls in progress (limit "
            f"{policy.max_outbound_calls}); raise max_outbound_calls with "
            "PATCH /account/dial-policy",
            code=RefusalCode.CONCURRENCY,
            param=None,
        )


async def check_daily_minutes(
    session: AsyncSession, org_id: str, policy: DialPolicy, now: datetime
) -> None:
    if policy.daily_minutes is None:
        return
    used = await outbound_minutes_today(session, org_id, now)
    if used >= policy.daily_minutes:
        raise DialRefused(
            f"The organization used {used} of its {policy.daily_minutes} outbound minutes "
            "today (UTC); raise daily_outbound_minutes with PATCH /account/dial-policy",
            code=RefusalCode.DAILY_MINUTES,
            param=None,
        )


async def policy_out(
    session: AsyncSession, org_id: str, settings: Settings, now: datetime
) -> DialPolicyOut:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound("Organization not found")
    policy = await policy_for(session, org, settings)
    return DialPolicyOut(
        outbound_countries=sorted(policy.countries),
        outbound_countries_source="numbers" if policy.countries_from_numbers else "organization",
        allow_premium_destinations=policy.allow_premium,
        daily_outbound_minutes=policy.daily_minutes,
        max_outbound_calls=policy.max_outbound_calls,
        outbound_minutes_today=await outbound_minutes_today(session, org_id, now),
        active_outbound_calls=await active_outbound_calls(session, org_id),
    )


async def update_policy(session: AsyncSession, org_id: str, body: DialPolicyUpdate) -> None:
    org = await session.get(Organization, org_id, with_for_update=True)
    if org is None:
        raise NotFound("Organization not found")
    given = body.model_fields_set
    if "outbound_countries" in given:
        if body.outbound_countries is None:
            org.outbound_countries = None
        else:
            countries = sorted({c.upper() for c in body.outbound_countries})
            unknown = [c for c in countries if c not in phonenumbers.SUPPORTED_REGIONS]
            if unknown:
                raise InvalidRequest(
                    f"Unknown country code(s): {', '.join(unknown)} (ISO 3166 alpha-2, e.g. NL)",
                    param="outbound_countries",
                )
            org.outbound_countries = countries
    if "allow_premium_destinations" in given:
        org.allow_premium_destinations = bool(body.allow_premium_destinations)
    if "daily_outbound_minutes" in given:
        org.daily_outbound_minutes = body.daily_outbound_minutes
    if "max_outbound_calls" in given:
        org.max_outbound_calls = body.max_outbound_calls


TRANSFER_UNAVAILABLE = "transfer_unavailable"


async def check_transfer(
    session: AsyncSession, call: Call, destination: str, settings: Settings
) -> None:
    """Refuse at once a transfer of ``call`` that cannot work or is not allowed:
    a phone number without a SIP trunk to reach it (400 ``transfer_unavailable``),
    or a destination the organization's dial policy forbids (403, see above)."""
    if not destination.startswith(("sip:", "sips:")):
        number = await session.get(PhoneNumber, call.number_id) if call.number_id else None
        if number is None or number.transfer_trunk_id is None:
            raise InvalidRequest(
                f"Cannot transfer to {destination}: the call's number has no SIP trunk "
                "(transfer_trunk_id) to reach a phone number; give the number a trunk "
                "or transfer to a sip: URI",
                param="destination",
                code=TRANSFER_UNAVAILABLE,
            )
    org = await session.get(Organization, call.org_id)
    if org is None:
        raise NotFound("Organization not found")
    check_destination(await policy_for(session, org, settings), destination)


async def transfer_refusal(
    session: AsyncSession, call_id: str, destination: str, settings: Settings
) -> FlireoError | None:
    """:func:`check_transfer` at dial time (the ``transferCall`` tool and the
    control command alike): the refusal, or None when the transfer may go ahead."""
    call = await session.get(Call, call_id)
    if call is None:
        return None
    try:
        await check_transfer(session, call, destination, settings)
    except (DialRefused, InvalidRequest) as exc:
        return exc
    return None
