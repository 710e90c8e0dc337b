"""``/usage`` (resources.md §6) and ``/account`` (§12)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.api.pagination import page
from flireo.domain.account import AccountOut, DialPolicyOut, DialPolicyUpdate
from flireo.domain.common import IsoDateTime, Page, Pagination
from flireo.domain.organization_settings import AccountUpdate
from flireo.domain.usage import UsageResponse
from flireo.errors import InvalidRequest, NotFound
from flireo.services import dial_policy
from flireo.services import usage as svc_usage
from flireo.services.container import Services
from flireo.store.tables import Organization

router = APIRouter(tags=["Usage and organization"], responses=error_responses(400, 401, 413, 429))


@router.get("/usage", response_model=UsageResponse, summary="Get usage logs with a summary")
async def get_usage(
    start_date: IsoDateTime | None = Query(
        None, description="Logged at or after (ISO-8601); not after end_date (else 400)"
    ),
    end_date: IsoDateTime | None = Query(
        None, description="Logged at or before (ISO-8601); not before start_date (else 400)"
    ),
    agent_id: str | None = Query(None),
    number_id: str | None = Query(None),
    window: Page = Depends(page),
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> UsageResponse:
    if start_date and end_date and start_date > end_date:
        raise InvalidRequest("start_date is after end_date", param="start_date")
    async with svc.db.read() as s:
        rows, totals = await svc_usage.usage_logs(
            s,
            who.org_id,
            window,
            start=start_date,
            end=end_date,
            agent_id=agent_id,
            number_id=number_id,
        )
    return UsageResponse(
        logs=[svc_usage.log_out(r) for r in rows],
        pagination=Pagination(total=int(totals["count"]), limit=window.limit, offset=window.offset),
        summary=svc_usage.summary_out(totals, svc.settings),
    )


@router.get("/account", response_model=AccountOut, summary="Get organization information")
async def get_account(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> AccountOut:
    async with svc.db.read() as s:
        return await svc_usage.account(s, who.org_id, svc.settings, svc.clock.now())


@router.get(
    "/account/dial-policy",
    response_model=DialPolicyOut,
    summary="Get the organization's outbound dial policy (toll-fraud guards)",
)
async def get_dial_policy(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DialPolicyOut:
    async with svc.db.read() as s:
        return await dial_policy.policy_out(s, who.org_id, svc.settings, svc.clock.now())


@router.patch(
    "/account/dial-policy",
    response_model=DialPolicyOut,
    summary="Change the organization's outbound dial policy",
)
async def update_dial_policy(
    body: DialPolicyUpdate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DialPolicyOut:
    async with svc.db.transaction() as s:
        await dial_policy.update_policy(s, who.org_id, body)
    async with svc.db.read() as s:
        return await dial_policy.policy_out(s, who.org_id, svc.settings, svc.clock.now())


@router.patch(
    "/account",
    response_model=AccountOut,
    summary="Update organization settings (recording_retention_days)",
)
async def update_account(
    body: AccountUpdate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> AccountOut:
    async with svc.db.transaction() as s:
        org = await s.get(Organization, who.org_id, with_for_update=True)
        if org is None:
            raise NotFound("Organization not found")
        if body.recording_retention_days is not None:
            org.recording_retention_days = body.recording_retention_days
    async with svc.db.read() as s:
        return await svc_usage.account(s, who.org_id, svc.settings, svc.clock.now())
