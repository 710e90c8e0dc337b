"""Learning outcomes from the call records, whoever ended the call.

Every pass looks at the leads in ``calling`` (a small set: at most the
campaigns' concurrency) and their Call rows:

* the call is final → the attempt's outcome is recorded on the lead, which
  becomes final or ``pending`` again for a retry;
* the call is still ``dialing`` after the lead's lease expired → nobody is
  dialing it (the claimer crashed before handing it over, or the dialer lost
  it): the call is failed with ``dial-interrupted``, which counts as the attempt;
* otherwise (ringing, in progress, or dialing within the lease) → wait.

A lead is never dialed again while the outcome of its last call is unknown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import case, or_, select

from flireo.campaigns.do_not_call import blocked_numbers
from flireo.campaigns.outcomes import NO_RETRY_REASONS, Outcome, after_attempt, classify
from flireo.domain.calls import FINAL_STATUSES, DialEndedReason
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.calls import set_status
from flireo.store.db import Database
from flireo.store.tables import Call, Campaign, CampaignLead

log = structlog.get_logger(__name__)


@dataclass
class Settled:
    #: attempts whose outcome was written to the lead
    recorded: int = 0
    #: ``dialing`` calls nobody owned any more, failed as ``dial-interrupted``
    interrupted: int = 0
    #: leads still waiting for their call to end
    in_flight: int = 0
    #: the pass stopped at its limit: run another soon
    more: bool = False


async def fail_call(
    db: Database,
    call_id: str,
    *,
    ended_reason: str,
    error: str,
    now: datetime,
    lifecycle: CallLifecycle | None = None,
) -> bool:
    """Fail a call that is still ``dialing`` (False when it moved on or ended).
    Through ``lifecycle`` when given, so the customer gets its webhooks."""
    async with db.transaction() as s:
        call = await s.get(Call, call_id, with_for_update=True)
        if call is None or call.status != "dialing":
            return False
        if lifecycle is None:
            return set_status(call, "failed", now=now, ended_reason=ended_reason, error=error)
    # a dialer answers within its INVITE timers (32 s), far inside the lease, so
    # nothing moves this call between the check above and the finish below
    completion = CallCompletion(status="failed", ended_reason=ended_reason, error=error)
    return await lifecycle.finish(call_id, completion)


async def settle_leads(
    db: Database,
    *,
    now: datetime,
    lifecycle: CallLifecycle | None = None,
    limit: int = 500,
) -> Settled:
    """One pass over the leads in ``calling`` (see the module docstring); at most
    ``limit`` of them, those with something to record first."""
    finished_call = or_(Call.id.is_(None), Call.status.in_(FINAL_STATUSES))
    stale_dial = (Call.status == "dialing") & or_(
        CampaignLead.lease_expires_at.is_(None), CampaignLead.lease_expires_at <= now
    )
    async with db.read() as s:
        rows = (
            await s.execute(
                select(
                    CampaignLead.id,
                    CampaignLead.call_id,
                    CampaignLead.lease_expires_at,
                    Call.status,
                )
                .outerjoin(Call, Call.id == CampaignLead.call_id)
                .where(
                    CampaignLead.status == "calling",
                    CampaignLead.campaign_id.in_(
                        select(Campaign.id).where(Campaign.status != "draft")
                    ),
                )
                .order_by(case((finished_call, 0), (stale_dial, 1), else_=2), CampaignLead.id)
                .limit(limit)
            )
        ).all()
    settled = Settled(more=len(rows) == limit)
    finished: list[str] = []
    for lead_id, call_id, lease_expires_at, call_status in rows:
        if call_status is None or call_status in FINAL_STATUSES:
            finished.append(lead_id)
        elif (
            call_id
            and call_status == "dialing"
            and (lease_expires_at is None or lease_expires_at <= now)
        ):
            await fail_call(
                db,
                call_id,
                ended_reason=DialEndedReason.INTERRUPTED,
                error="no process was dialing this campaign call any more",
                now=now,
                lifecycle=lifecycle,
            )
            settled.interrupted += 1
            finished.append(lead_id)
        else:
            settled.in_flight += 1
    if settled.interrupted:
        log.warning("campaign calls left dialing were interrupted", count=settled.interrupted)
    if finished:
        settled.recorded = await _record_outcomes(db, finished, now=now)
    return settled


async def _record_outcomes(db: Database, lead_ids: list[str], *, now: datetime) -> int:
    recorded = 0
    async with db.transaction() as s:
        stmt = (
            select(CampaignLead, Campaign.max_attempts, Campaign.retry_delay_seconds)
            .join(Campaign, Campaign.id == CampaignLead.campaign_id)
            .where(CampaignLead.id.in_(lead_ids), CampaignLead.status == "calling")
            .order_by(CampaignLead.id)  # one lock order for every process
        )
        if db.dialect == "postgresql":
            stmt = stmt.with_for_update(of=CampaignLead)
        rows = (await s.execute(stmt)).all()
        call_ids = [lead.call_id for lead, _, _ in rows if lead.call_id]
        calls = {
            c.id: c for c in (await s.execute(select(Call).where(Call.id.in_(call_ids)))).scalars()
        }
        numbers: dict[str, set[str]] = defaultdict(set)
        for lead, _, _ in rows:
            numbers[lead.org_id].add(lead.phone_number)
        blocked = {
            (org_id, number)
            for org_id, org_numbers in numbers.items()
            for number in await blocked_numbers(s, org_id, org_numbers)
        }
        for lead, max_attempts, retry_delay in rows:
            call = calls.get(lead.call_id or "")
            if call is not None and call.status not in FINAL_STATUSES:
                continue  # still dialing: interrupted by someone else's pass, not yet visible
            outcome: Outcome = (
                classify(call.ended_reason, answered=call.started_at is not None)
                if call is not None
                else "failed"
            )
            decision = after_attempt(
                outcome,
                attempts=lead.attempts,
                max_attempts=max_attempts,
                retry_delay_seconds=retry_delay,
                ended_at=(call.ended_at if call is not None and call.ended_at else now),
                do_not_call=(lead.org_id, lead.phone_number) in blocked,
                retry=call is None or call.ended_reason not in NO_RETRY_REASONS,
            )
            lead.status = decision.status
            lead.next_attempt_at = decision.next_attempt_at
            lead.outcome = outcome
            lead.lease_owner = None
            lead.lease_expires_at = None
            recorded += 1
    return recorded
