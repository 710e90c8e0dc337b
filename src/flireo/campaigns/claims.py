"""Claiming leads: the one transaction that turns due leads into dialing calls.

Inside one write transaction: the organization's row is locked (PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so capacity is
counted and used by one claimer at a time across every process; the due leads
are selected with ``FOR UPDATE SKIP LOCKED``; each claimed lead gets its lease,
its attempt and its ``dialing`` Call row together. Only after the commit are
the calls handed to the dialer, so a lead is dialed at most once per claim, and
a crash in between leaves a ``dialing`` call nobody dials, which
:mod:`flireo.campaigns.reconcile` later marks ``dial-interrupted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.campaigns.calling_window import DEFAULT_HORIZON, CallingWindow, calling_window
from flireo.campaigns.capacity import Limits, active_calls, free_slots
from flireo.campaigns.do_not_call import blocked_numbers
from flireo.campaigns.lead_timezones import lead_zones
from flireo.campaigns.personalization import call_overrides
from flireo.errors import FlireoError
from flireo.services.calls import outbound_call_id
from flireo.services.dial_policy import (
    DialRefused,
    check_daily_minutes,
    check_destination,
    outbound_room,
    policy_for,
)
from flireo.services.outbound import caller_number
from flireo.settings import Settings
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
class Claim:
    """What one claim did. ``call_ids`` must now be handed to the dialer."""

    call_ids: list[str] = field(default_factory=list)
    #: why nothing could be dialed: not-scheduled, no-capacity, no-credits,
    #: agent-unavailable, no-caller-number (None when leads were looked at)
    blocked: str | None = None
    #: leads left due because the claim wanted no more (tokens or capacity)
    more_due: bool = False
    #: leads moved to the next time their calling window opens
    deferred: int = 0
    #: leads on the do-not-call list, closed without a call
    suppressed: int = 0
    #: nothing is due: the earliest time a pending lead becomes due
    wake_at: datetime | None = None
    #: the dialer found every lead final and set the campaign ``completed``
    completed: bool = False
    #: leads the dial policy refused (services/dial_policy.py): their calls are
    #: stored ``connecting`` and must now be ended ``rejected`` (call id, reason, error)
    refused: list[tuple[str, str, str]] = field(default_factory=list)


async def claim_leads(
    db: Database,
    campaign_id: str,
    *,
    want: int,
    node_id: str,
    now: datetime,
    lease: timedelta,
    batch: int = 100,
    horizon: timedelta = DEFAULT_HORIZON,
    settings: Settings | None = None,
) -> Claim:
    """Claim up to ``want`` due leads of a ``scheduled`` campaign and store their calls.
    ``settings``: the server's dial-policy defaults (None: only the organization's own caps)."""
    pg = db.dialect == "postgresql"
    async with db.transaction() as s:
        campaign = await s.get(Campaign, campaign_id)
        if campaign is None:
            return Claim(blocked="not-scheduled")
        org_stmt = select(Organization).where(Organization.id == campaign.org_id)
        org = (await s.execute(org_stmt.with_for_update() if pg else org_stmt)).scalar_one()
        # read after the lock: a pause committed before it is seen here
        await s.refresh(campaign)
        if campaign.status != "scheduled":
            return Claim(blocked="not-scheduled")
        if org.minutes_balance <= 0:
            return Claim(blocked="no-credits")
        agent = await s.get(Agent, campaign.agent_id) if campaign.agent_id else None
        if agent is None or not agent.is_active:
            return Claim(blocked="agent-unavailable")
        try:
            number = await caller_number(s, campaign.org_id, campaign.number_id)
        except FlireoError:
            return Claim(blocked="no-caller-number")
        trunk = await s.get(SipTrunk, number.transfer_trunk_id)
        limits = Limits(
            campaign=campaign.max_concurrent_calls,
            trunk=trunk.max_concurrent_calls if trunk is not None else None,
            org=org.max_concurrent_calls,
            reserved_inbound=org.reserved_inbound_calls or 0,
        )
        active = await active_calls(
            s, org_id=org.id, campaign_id=campaign.id, trunk_id=number.transfer_trunk_id
        )
        room = min(want, free_slots(limits, active))
        if room <= 0:
            return Claim(blocked="no-capacity")
        policy = await policy_for(s, org, settings)  # toll-fraud guards, as for API calls
        try:
            await check_daily_minutes(s, org.id, policy, now)
        except DialRefused:
            return Claim(blocked="outbound-daily-limit")
        outbound = await outbound_room(s, org.id, policy)
        if outbound is not None:
            room = min(room, outbound)
            if room <= 0:
                return Claim(blocked="no-capacity")
        due = (
            select(CampaignLead)
            .where(
                CampaignLead.campaign_id == campaign.id,
                CampaignLead.status == "pending",
                or_(CampaignLead.next_attempt_at.is_(None), CampaignLead.next_attempt_at <= now),
            )
            .order_by(CampaignLead.created_at, CampaignLead.id)
            .limit(batch)
        )
        if pg:
            due = due.with_for_update(skip_locked=True)
        leads = (await s.execute(due)).scalars().all()
        claim = Claim()
        blocked = await blocked_numbers(s, org.id, {lead.phone_number for lead in leads})
        windows: dict[tuple[str, ...], CallingWindow] = {}
        for lead in leads:
            if lead.phone_number in blocked:
                lead.status, lead.outcome, lead.next_attempt_at = "do-not-call", "do-not-call", None
                claim.suppressed += 1
                continue
            try:
                check_destination(policy, lead.phone_number, param="phone_number")
            except DialRefused as exc:  # final: another attempt would be refused too
                call_id = _store_call(
                    s, campaign, agent, number, lead, node_id=node_id, now=now, lease=lease
                )
                await s.flush()
                refused_call = await s.get(Call, call_id)
                assert refused_call is not None
                refused_call.status = "connecting"
                lead.status, lead.outcome, lead.next_attempt_at = "failed", "failed", None
                lead.lease_owner = lead.lease_expires_at = None
                claim.refused.append((call_id, exc.ended_reason, exc.message))
                continue
            zones = lead_zones(lead.phone_number, lead.timezone, campaign.timezone)
            window = windows.get(zones)
            if window is None:
                window = windows[zones] = calling_window(
                    campaign_start=campaign.schedule_start_time,
                    campaign_end=campaign.schedule_end_time,
                    campaign_zone=campaign.timezone,
                    lead_zones=zones,
                )
            if not window.allows(now):
                lead.next_attempt_at = window.next_opening(now, horizon) or now + horizon
                claim.deferred += 1
                continue
            if len(claim.call_ids) >= room:
                claim.more_due = True
                continue
            claim.call_ids.append(
                _store_call(s, campaign, agent, number, lead, node_id=node_id, now=now, lease=lease)
            )
        if not claim.call_ids and len(leads) < batch:
            await _when_idle(s, campaign, claim)
        return claim


def _store_call(
    s: AsyncSession,
    campaign: Campaign,
    agent: Agent,
    number: PhoneNumber,
    lead: CampaignLead,
    *,
    node_id: str,
    now: datetime,
    lease: timedelta,
) -> str:
    call_id, room = outbound_call_id()
    overrides, greeting = call_overrides(
        campaign.system_message_template, agent.first_message, lead.variables
    )
    if not campaign.recording_enabled:
        overrides["recordingEnabled"] = False
    s.add(
        Call(
            id=call_id,
            org_id=campaign.org_id,
            agent_id=agent.id,
            number_id=number.id,
            campaign_id=campaign.id,
            lead_id=lead.id,
            direction="outbound",
            caller_phone=lead.phone_number,
            assistant_phone=number.phone_number,
            status="dialing",
            agent_name=agent.name,
            business_name=agent.business_name,
            room_name=room,
            first_message=greeting,
            overrides=overrides,
            owner_node=node_id,
            created_at=now,
            updated_at=now,
        )
    )
    lead.status = "calling"
    lead.attempts += 1
    lead.last_attempt_at = now
    lead.call_id = call_id
    lead.outcome = None
    lead.next_attempt_at = None
    lead.lease_owner = node_id
    lead.lease_expires_at = now + lease
    return call_id


async def _when_idle(s: AsyncSession, campaign: Campaign, claim: Claim) -> None:
    """Nothing was due: when is the next lead due, or is the campaign done?"""
    open_leads = (
        await s.execute(
            select(CampaignLead.status, func.count(), func.min(CampaignLead.next_attempt_at))
            .where(
                CampaignLead.campaign_id == campaign.id,
                CampaignLead.status.in_(("pending", "calling")),
            )
            .group_by(CampaignLead.status)
        )
    ).all()
    pending = {status: (count, first) for status, count, first in open_leads}
    if "pending" in pending:
        claim.wake_at = pending["pending"][1]
        return
    if pending:
        return  # calls in progress
    any_lead = await s.scalar(
        select(CampaignLead.id).where(CampaignLead.campaign_id == campaign.id).limit(1)
    )
    if any_lead is not None:
        campaign.status = "completed"
        claim.completed = True


@dataclass(frozen=True, slots=True)
class LeadQueue:
    """A read-only look at a campaign's open leads (no write transaction needed)."""

    #: pending leads that may be called now (window permitting)
    due: int
    #: the earliest ``next_attempt_at`` of the pending leads that are not due
    wake_at: datetime | None
    #: pending and calling leads
    open: int
    #: the campaign has leads at all
    any_leads: bool

    @property
    def needs_claim(self) -> bool:
        """Worth a write transaction: leads to dial, or the campaign is done."""
        return self.due > 0 or (self.open == 0 and self.any_leads)


async def lead_queue(db: Database, campaign_id: str, now: datetime) -> LeadQueue:
    is_due = or_(CampaignLead.next_attempt_at.is_(None), CampaignLead.next_attempt_at <= now)
    async with db.read() as s:
        due, wake_at, open_leads = (
            await s.execute(
                select(
                    func.sum(case((is_due & (CampaignLead.status == "pending"), 1), else_=0)),
                    func.min(
                        case((CampaignLead.status == "pending", CampaignLead.next_attempt_at))
                    ),
                    func.count(),
                ).where(
                    CampaignLead.campaign_id == campaign_id,
                    CampaignLead.status.in_(("pending", "calling")),
                )
            )
        ).one()
        any_leads = bool(open_leads) or (
            await s.scalar(
                select(CampaignLead.id).where(CampaignLead.campaign_id == campaign_id).limit(1)
            )
            is not None
        )
    return LeadQueue(int(due or 0), wake_at, int(open_leads or 0), any_leads)


async def forget_deferrals(db: Database, campaign_id: str) -> None:
    """The campaign's window may have changed: first attempts deferred to a window
    opening are looked at again (retries keep their ``retry_delay_seconds``)."""
    async with db.transaction() as s:
        await s.execute(
            update(CampaignLead)
            .where(
                CampaignLead.campaign_id == campaign_id,
                CampaignLead.status == "pending",
                CampaignLead.attempts == 0,
                CampaignLead.next_attempt_at.is_not(None),
            )
            .values(next_attempt_at=None)
        )
