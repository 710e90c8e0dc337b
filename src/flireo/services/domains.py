"""The organization's e-mail sending domain, kept in sync with Resend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.domains import DomainOut, ResendDomainSummary, records_from_resend
from flireo.email.dns_check import check_records, make_resolver
from flireo.email.resend import ResendClient
from flireo.errors import Conflict, InvalidRequest, NotFound
from flireo.services.container import Services
from flireo.services.credentials import resolve_key
from flireo.store.tables import Domain


async def resend_client(svc: Services, session: AsyncSession, org_id: str) -> ResendClient:
    key = await resolve_key(session, svc.vault, svc.settings, org_id, "resend")
    if not key:
        raise InvalidRequest(
            "No Resend key: add one with POST /byok {provider: 'resend'}",
            code="resend_not_configured",
        )
    return ResendClient(key, base_url=svc.settings.resend_base_url, http=svc.http)


async def org_domain(session: AsyncSession, org_id: str) -> Domain | None:
    return (
        await session.execute(select(Domain).where(Domain.org_id == org_id))
    ).scalar_one_or_none()


async def require_domain(session: AsyncSession, org_id: str) -> Domain:
    row = await org_domain(session, org_id)
    if row is None:
        raise NotFound("No domain configured: add one with POST /domains")
    return row


def apply_resend(row: Domain, data: dict[str, Any]) -> None:
    row.resend_domain_id = str(data.get("id") or row.resend_domain_id)
    row.domain_name = str(data.get("name") or row.domain_name)
    row.status = str(data.get("status") or row.status or "not_started")
    row.region = data.get("region") or row.region
    if "records" in data:
        row.records = records_from_resend(data.get("records"))


def domain_out(row: Domain) -> DomainOut:
    return DomainOut.model_validate(
        {k: getattr(row, k) for k in DomainOut.model_fields if hasattr(row, k)}
    )


async def add_domain(svc: Services, org_id: str, name: str, region: str) -> DomainOut:
    async with svc.db.read() as s:
        if await org_domain(s, org_id) is not None:
            raise Conflict("This organization already has a domain; delete it first")
        client = await resend_client(svc, s, org_id)
    data = await client.create_domain(name, region)
    async with svc.db.transaction() as s:
        if await org_domain(s, org_id) is not None:
            raise Conflict("This organization already has a domain; delete it first")
        row = Domain(org_id=org_id, domain_name=name, resend_domain_id="", status="", region=region)
        apply_resend(row, data)
        s.add(row)
        await s.flush()
        return domain_out(row)


async def delete_domain(svc: Services, org_id: str) -> None:
    async with svc.db.read() as s:
        row = await require_domain(s, org_id)
        client = await resend_client(svc, s, org_id)
        resend_id = row.resend_domain_id
    await client.delete_domain(resend_id)
    async with svc.db.transaction() as s:
        current = await org_domain(s, org_id)
        if current is not None:
            await s.delete(current)


async def list_resend_domains(svc: Services, org_id: str) -> list[ResendDomainSummary]:
    async with svc.db.read() as s:
        client = await resend_client(svc, s, org_id)
    return [
        ResendDomainSummary.model_validate({k: d.get(k) for k in ResendDomainSummary.model_fields})
        for d in await client.list_domains()
        if d.get("id") and d.get("name")
    ]


async def sync_domain(svc: Services, org_id: str, resend_domain_id: str) -> DomainOut:
    """Adopt an existing Resend domain as the organization's domain."""
    async with svc.db.read() as s:
        client = await resend_client(svc, s, org_id)
    data = await client.get_domain(resend_domain_id)
    async with svc.db.transaction() as s:
        row = await org_domain(s, org_id)
        if row is None:
            row = Domain(org_id=org_id, domain_name="", resend_domain_id="", status="")
            s.add(row)
        row.records = []
        apply_resend(row, data)
        row.dns_checks = None
        await s.flush()
        return domain_out(row)


async def refresh_domain(svc: Services, org_id: str, *, verify: bool) -> DomainOut:
    """Pull the status from Resend (asking it to verify first when ``verify``);
    on verify, also check the DNS records ourselves."""
    async with svc.db.read() as s:
        row = await require_domain(s, org_id)
        client = await resend_client(svc, s, org_id)
        resend_id, name = row.resend_domain_id, row.domain_name
    if verify:
        await client.verify_domain(resend_id)
    data = await client.get_domain(resend_id)
    checks = None
    if verify:
        resolver = make_resolver(svc.settings.dns_nameservers, svc.settings.dns_timeout_seconds)
        records = records_from_resend(data.get("records")) or list(row.records)
        checks = [c.model_dump() for c in await check_records(resolver, name, records)]
    async with svc.db.transaction() as s:
        row = await require_domain(s, org_id)
        apply_resend(row, data)
        if checks is not None:
            row.dns_checks = checks
        await s.flush()
        return domain_out(row)
