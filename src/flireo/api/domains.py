"""``/domains`` (resources.md §10): one custom sending domain per organization,
managed at Resend with the organization's (or the platform's) Resend key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.domain.domains import DomainCreate, DomainResponse, DomainSync, ResendDomainList
from flireo.services import domains as svc_domains
from flireo.services.container import Services

router = APIRouter(
    prefix="/domains", tags=["Domains"], responses=error_responses(400, 401, 413, 429, 502)
)


@router.get("", response_model=DomainResponse, summary="Get your domain (null when none)")
async def get_domain(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DomainResponse:
    async with svc.db.read() as s:
        row = await svc_domains.org_domain(s, who.org_id)
        return DomainResponse(domain=svc_domains.domain_out(row) if row else None)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DomainResponse,
    summary="Add a domain (created at Resend)",
    responses=error_responses(409),
)
async def add_domain(
    body: DomainCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DomainResponse:
    return DomainResponse(
        domain=await svc_domains.add_domain(svc, who.org_id, body.domain_name, body.region)
    )


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete your domain (also at Resend)",
    responses=error_responses(404),
)
async def delete_domain(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    await svc_domains.delete_domain(svc, who.org_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sync", response_model=ResendDomainList, summary="List available Resend domains")
async def list_resend_domains(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ResendDomainList:
    return ResendDomainList(domains=await svc_domains.list_resend_domains(svc, who.org_id))


@router.post(
    "/sync",
    response_model=DomainResponse,
    summary="Select and sync a Resend domain",
    responses=error_responses(404),
)
async def sync_domain(
    body: DomainSync, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DomainResponse:
    return DomainResponse(
        domain=await svc_domains.sync_domain(svc, who.org_id, body.resend_domain_id)
    )


@router.post(
    "/verify",
    response_model=DomainResponse,
    summary="Verify domain DNS records (at Resend and by our own DNS lookups)",
    responses=error_responses(404),
)
async def verify_domain(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DomainResponse:
    return DomainResponse(domain=await svc_domains.refresh_domain(svc, who.org_id, verify=True))


@router.post(
    "/refresh",
    response_model=DomainResponse,
    summary="Refresh domain status from Resend",
    responses=error_responses(404),
)
async def refresh_domain(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DomainResponse:
    return DomainResponse(domain=await svc_domains.refresh_domain(svc, who.org_id, verify=False))
