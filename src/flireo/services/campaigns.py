"""Campaign and lead records (the dialer that works them is ``flireo.campaigns``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.campaigns import (
    ALLOWED_TRANSITIONS,
    FINAL_LEAD_STATUSES,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    LeadCreate,
    LeadOut,
    placeholders,
)
from flireo.domain.common import Page
from flireo.errors import InvalidRequest
from flireo.store.crud import flush_unique, get_owned
from flireo.store.tables import Agent, Campaign, CampaignLead, PhoneNumber

_DEFAULTS = {
    "max_concurrent_calls": 5,
    "calls_per_second": 1.0,
    "max_attempts": 3,
    "retry_delay_seconds": 3600,
}


async def _check_refs(
    s: AsyncSession, org_id: str, agent_id: str | None, number_id: str | None
) -> None:
    if agent_id is not None:
        await get_owned(s, Agent, org_id, agent_id, what="Agent", param="agent_id")
    if number_id is not None:
        await get_owned(s, PhoneNumber, org_id, number_id, what="Phone number", param="number_id")


async def create_campaign(s: AsyncSession, org_id: str, body: CampaignCreate) -> Campaign:
    await _check_refs(s, org_id, body.agent_id, body.number_id)
    values = {k: v for k, v in body.model_dump().items() if v is not None}
    row = Campaign(org_id=org_id, **{**_DEFAULTS, **values})
    s.add(row)
    await s.flush()
    return row


async def update_campaign(
    s: AsyncSession, org_id: str, campaign_id: str, body: CampaignUpdate
) -> Campaign:
    row = await get_owned(s, Campaign, org_id, campaign_id, what="Campaign", for_update=True)
    fields = set(body.model_fields_set)
    await _check_refs(
        s,
        org_id,
        body.agent_id if "agent_id" in fields else None,
        body.number_id if "number_id" in fields else None,
    )
    if body.status is not None and body.status not in ALLOWED_TRANSITIONS[row.status]:
        raise InvalidRequest(
            f"A {row.status} campaign cannot become {body.status}",
            param="status",
            code="invalid_status",
        )
    for key, value in body.model_dump(include=fields).items():
        if value is None and key not in ("system_message_template", "number_id"):
            continue  # fields that cannot be emptied keep their value
        setattr(row, key, value)
    start = row.schedule_start_time
    if start == row.schedule_end_time:
        raise InvalidRequest(
            "schedule_start_time and schedule_end_time must differ", param="schedule_end_time"
        )
    await s.flush()
    return row


async def lead_counts(s: AsyncSession, campaign_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """campaign id -> (total leads, leads in a final status)."""
    if not campaign_ids:
        return {}
    final = func.sum(case((CampaignLead.status.in_(FINAL_LEAD_STATUSES), 1), else_=0))
    rows = await s.execute(
        select(CampaignLead.campaign_id, func.count(), final)
        .where(CampaignLead.campaign_id.in_(campaign_ids))
        .group_by(CampaignLead.campaign_id)
    )
    return {cid: (int(total), int(done or 0)) for cid, total, done in rows.all()}


def campaign_out(row: Campaign, counts: dict[str, tuple[int, int]]) -> CampaignOut:
    total, done = counts.get(row.id, (0, 0))
    return CampaignOut.model_validate(
        {
            **{k: getattr(row, k) for k in CampaignOut.model_fields if hasattr(row, k)},
            "total_leads": total,
            "completed_leads": done,
        }
    )


async def required_variables(s: AsyncSession, campaign: Campaign) -> set[str]:
    """Variables a lead needs: placeholders of the campaign prompt and the agent's greeting."""
    names = placeholders(campaign.system_message_template)
    if campaign.agent_id:
        agent = await s.get(Agent, campaign.agent_id)
        if agent is not None:
            names |= placeholders(agent.first_message)
    return names


async def add_leads(
    s: AsyncSession, org_id: str, campaign_id: str, leads: Sequence[LeadCreate]
) -> list[CampaignLead]:
    campaign = await get_owned(s, Campaign, org_id, campaign_id, what="Campaign")
    needed = await required_variables(s, campaign)
    rows = []
    for lead in leads:
        row = CampaignLead(
            campaign_id=campaign.id,
            org_id=org_id,
            phone_number=lead.phone_number,
            variables=lead.variables,
            timezone=lead.timezone,
            missing_variables=sorted(needed - lead.variables.keys()),
            status="pending",
            attempts=0,
        )
        s.add(row)
        rows.append(row)
    numbers = [lead.phone_number for lead in leads]
    if len(numbers) != len(set(numbers)):
        raise InvalidRequest("The same phone number appears twice in this upload", param="leads")
    await flush_unique(
        s, "A lead with this phone number is already in the campaign", param="phone_number"
    )
    return rows


async def list_leads(
    s: AsyncSession, org_id: str, campaign_id: str, page: Page, status: str | None
) -> tuple[Sequence[CampaignLead], int]:
    await get_owned(s, Campaign, org_id, campaign_id, what="Campaign")
    where: list[Any] = [CampaignLead.campaign_id == campaign_id, CampaignLead.org_id == org_id]
    if status:
        where.append(CampaignLead.status == status)
    total = (
        await s.execute(select(func.count()).select_from(CampaignLead).where(*where))
    ).scalar_one()
    rows = (
        await s.execute(
            select(CampaignLead)
            .where(*where)
            .order_by(CampaignLead.created_at, CampaignLead.id)
            .limit(page.limit)
            .offset(page.offset)
        )
    ).scalars()
    return rows.all(), int(total)


def lead_out(row: CampaignLead) -> LeadOut:
    return LeadOut.model_validate(row)
