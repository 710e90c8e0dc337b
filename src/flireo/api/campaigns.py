"""``/campaigns`` and their leads (resources.md §13)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.api.pagination import page
from flireo.domain.campaigns import (
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    LeadBulkCreate,
    LeadCreate,
    LeadOut,
    LeadsResponse,
    LeadStatus,
)
from flireo.domain.common import Page, Pagination
from flireo.errors import NotFound
from flireo.services import campaigns as svc_campaigns
from flireo.services.container import Services
from flireo.store.crud import get_owned, list_owned
from flireo.store.tables import Campaign, CampaignLead

router = APIRouter(
    prefix="/campaigns", tags=["Campaigns"], responses=error_responses(400, 401, 413, 429)
)


class CampaignEnvelope(BaseModel):
    campaign: CampaignOut


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class LeadEnvelope(BaseModel):
    lead: LeadOut


class LeadList(BaseModel):
    leads: list[LeadOut]


@router.get("", response_model=CampaignList, summary="List all campaigns")
async def list_campaigns(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> CampaignList:
    async with svc.db.read() as s:
        rows = await list_owned(s, Campaign, who.org_id)
        counts = await svc_campaigns.lead_counts(s, [r.id for r in rows])
    return CampaignList(campaigns=[svc_campaigns.campaign_out(r, counts) for r in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignEnvelope,
    summary="Create a campaign",
    responses=error_responses(404),
)
async def create_campaign(
    body: CampaignCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> CampaignEnvelope:
    async with svc.db.transaction() as s:
        row = await svc_campaigns.create_campaign(s, who.org_id, body)
    return CampaignEnvelope(campaign=svc_campaigns.campaign_out(row, {}))


@router.get(
    "/{campaign_id}",
    response_model=CampaignEnvelope,
    summary="Get a campaign",
    responses=error_responses(404),
)
async def get_campaign(
    campaign_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> CampaignEnvelope:
    async with svc.db.read() as s:
        row = await get_owned(s, Campaign, who.org_id, campaign_id, what="Campaign")
        counts = await svc_campaigns.lead_counts(s, [row.id])
    return CampaignEnvelope(campaign=svc_campaigns.campaign_out(row, counts))


@router.patch(
    "/{campaign_id}",
    response_model=CampaignEnvelope,
    summary="Update a campaign (status drives the lifecycle)",
    responses=error_responses(404),
)
async def update_campaign(
    campaign_id: str,
    body: CampaignUpdate,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> CampaignEnvelope:
    async with svc.db.transaction() as s:
        row = await svc_campaigns.update_campaign(s, who.org_id, campaign_id, body)
        counts = await svc_campaigns.lead_counts(s, [row.id])
    return CampaignEnvelope(campaign=svc_campaigns.campaign_out(row, counts))


@router.delete(
    "/{campaign_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a campaign and its leads (calls in progress continue)",
    responses=error_responses(404),
)
async def delete_campaign(
    campaign_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    async with svc.db.transaction() as s:
        row = await get_owned(s, Campaign, who.org_id, campaign_id, what="Campaign")
        await s.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{campaign_id}/leads",
    response_model=LeadsResponse,
    summary="List campaign leads",
    responses=error_responses(404),
)
async def list_leads(
    campaign_id: str,
    lead_status: LeadStatus | None = Query(None, alias="status"),
    window: Page = Depends(page),
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> LeadsResponse:
    async with svc.db.read() as s:
        rows, total = await svc_campaigns.list_leads(
            s, who.org_id, campaign_id, window, lead_status
        )
    return LeadsResponse(
        leads=[svc_campaigns.lead_out(r) for r in rows],
        pagination=Pagination(total=total, limit=window.limit, offset=window.offset),
    )


@router.post(
    "/{campaign_id}/leads",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadEnvelope | LeadList,
    summary='Add a lead (or up to 1000 with {"leads": [...]})',
    responses=error_responses(404, 409),
)
async def add_lead(
    campaign_id: str,
    body: LeadCreate | LeadBulkCreate,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> LeadEnvelope | LeadList:
    leads = body.leads if isinstance(body, LeadBulkCreate) else [body]
    async with svc.db.transaction() as s:
        rows = await svc_campaigns.add_leads(s, who.org_id, campaign_id, leads)
    if isinstance(body, LeadBulkCreate):
        return LeadList(leads=[svc_campaigns.lead_out(r) for r in rows])
    return LeadEnvelope(lead=svc_campaigns.lead_out(rows[0]))


@router.delete(
    "/{campaign_id}/leads/{lead_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a lead (a call already in progress is not cut)",
    responses=error_responses(404),
)
async def remove_lead(
    campaign_id: str,
    lead_id: str,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> Response:
    async with svc.db.transaction() as s:
        await get_owned(s, Campaign, who.org_id, campaign_id, what="Campaign")
        lead = await get_owned(s, CampaignLead, who.org_id, lead_id, what="Lead")
        if lead.campaign_id != campaign_id:
            raise NotFound("Lead not found")
        await s.delete(lead)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
