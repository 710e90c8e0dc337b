"""An organization ready to run campaigns: agent, SIP trunk, caller number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from flireo.domain.campaigns import CampaignCreate, CampaignUpdate, LeadCreate
from flireo.services import campaigns as svc_campaigns
from flireo.services.organizations import create_organization
from flireo.store.db import Database
from flireo.store.tables import (
    Agent,
    Call,
    Campaign,
    CampaignLead,
    Organization,
    PhoneNumber,
    SipTrunk,
)


@dataclass
class World:
    db: Database
    org_id: str
    agent_id: str
    trunk_id: str
    number_id: str

    async def add_number(self, phone_number: str, trunk_id: str | None = None) -> str:
        async with self.db.transaction() as s:
            number = PhoneNumber(
                org_id=self.org_id,
                phone_number=phone_number,
                transfer_trunk_id=trunk_id or self.trunk_id,
            )
            s.add(number)
        return number.id

    async def campaign(
        self, leads: list[dict[str, Any]], *, status: str = "scheduled", **fields: Any
    ) -> str:
        body = {
            "name": "Outreach",
            "agent_id": self.agent_id,
            "number_id": self.number_id,
            "schedule_start_time": "00:00:00",
            "schedule_end_time": "23:59:59",
            "timezone": "UTC",
            **fields,
        }
        async with self.db.transaction() as s:
            row = await svc_campaigns.create_campaign(
                s, self.org_id, CampaignCreate.model_validate(body)
            )
            campaign_id = row.id
        if leads:
            await self.add_leads(campaign_id, leads)
        if status != "draft":
            await self.set_status(campaign_id, status)
        return campaign_id

    async def add_leads(self, campaign_id: str, leads: list[dict[str, Any]]) -> None:
        async with self.db.transaction() as s:
            await svc_campaigns.add_leads(
                s, self.org_id, campaign_id, [LeadCreate.model_validate(x) for x in leads]
            )

    async def set_status(self, campaign_id: str, status: str) -> None:
        async with self.db.transaction() as s:
            await svc_campaigns.update_campaign(
                s, self.org_id, campaign_id, CampaignUpdate.model_validate({"status": status})
            )

    async def campaign_status(self, campaign_id: str) -> str:
        async with self.db.read() as s:
            row = await s.get(Campaign, campaign_id)
            assert row is not None
            return row.status

    async def leads(self, campaign_id: str) -> dict[str, CampaignLead]:
        async with self.db.read() as s:
            rows = await s.execute(
                select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
            )
            return {lead.phone_number: lead for lead in rows.scalars()}

    async def calls(self, campaign_id: str) -> list[Call]:
        async with self.db.read() as s:
            rows = await s.execute(
                select(Call).where(Call.campaign_id == campaign_id).order_by(Call.created_at)
            )
            return list(rows.scalars())

    async def inbound_call(self, call_id: str, now: datetime) -> None:
        """An inbound call in progress on the organization's number."""
        async with self.db.transaction() as s:
            s.add(
                Call(
                    id=call_id,
                    org_id=self.org_id,
                    agent_id=self.agent_id,
                    number_id=self.number_id,
                    direction="inbound",
                    status="in-progress",
                    caller_phone="+31201111111",
                    started_at=now,
                    created_at=now,
                )
            )


async def make_world(
    db: Database,
    *,
    minutes: int = 100_000,
    org_max: int | None = None,
    reserved_inbound: int = 0,
    trunk_max: int | None = None,
    first_message: str | None = "Hi {{name}}!",
    number: str = "+31850835037",
    outbound_countries: list[str] | None = None,
) -> World:
    async with db.transaction() as s:
        org = await create_organization(s, "Acme Corp", minutes_balance=minutes)
        org_row = await s.get(Organization, org.id)
        assert org_row is not None
        org_row.max_concurrent_calls = org_max
        org_row.reserved_inbound_calls = reserved_inbound
        org_row.outbound_countries = outbound_countries  # None: the countries of its numbers
        agent = Agent(org_id=org.id, name="Caller", first_message=first_message, is_active=True)
        trunk = SipTrunk(
            org_id=org.id, name="carrier", host="sip.example.com", max_concurrent_calls=trunk_max
        )
        s.add_all([agent, trunk])
        await s.flush()
        phone = PhoneNumber(org_id=org.id, phone_number=number, transfer_trunk_id=trunk.id)
        s.add(phone)
        await s.flush()
        return World(db, org.id, agent.id, trunk.id, phone.id)
