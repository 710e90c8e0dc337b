"""How many more calls a campaign may start: its own cap, its trunk's, its
organization's, less the room kept for inbound calls, less every call that is
already active there (inbound and outbound, from any process)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.calls import ACTIVE_STATUSES
from flireo.store.tables import Call, PhoneNumber


@dataclass(frozen=True, slots=True)
class Limits:
    campaign: int
    #: ``SipTrunk.max_concurrent_calls`` of the campaign number's trunk (None: no cap)
    trunk: int | None
    #: ``Organization.max_concurrent_calls`` (None: no cap)
    org: int | None
    #: ``Organization.reserved_inbound_calls``: kept free under the trunk and org caps
    reserved_inbound: int = 0


@dataclass(frozen=True, slots=True)
class ActiveCalls:
    campaign: int
    trunk: int
    org: int


def free_slots(limits: Limits, active: ActiveCalls) -> int:
    """Calls the campaign may start now (never negative)."""
    free = limits.campaign - active.campaign
    if limits.trunk is not None:
        free = min(free, limits.trunk - limits.reserved_inbound - active.trunk)
    if limits.org is not None:
        free = min(free, limits.org - limits.reserved_inbound - active.org)
    return max(0, free)


async def active_calls(
    s: AsyncSession, *, org_id: str, campaign_id: str, trunk_id: str | None
) -> ActiveCalls:
    active = Call.status.in_(ACTIVE_STATUSES)
    campaign = await s.scalar(
        select(func.count()).select_from(Call).where(Call.campaign_id == campaign_id, active)
    )
    org = await s.scalar(
        select(func.count()).select_from(Call).where(Call.org_id == org_id, active)
    )
    trunk = 0
    if trunk_id is not None:
        trunk = (
            await s.scalar(
                select(func.count())
                .select_from(Call)
                .join(PhoneNumber, PhoneNumber.id == Call.number_id)
                .where(PhoneNumber.transfer_trunk_id == trunk_id, active)
            )
            or 0
        )
    return ActiveCalls(campaign=campaign or 0, trunk=trunk, org=org or 0)
