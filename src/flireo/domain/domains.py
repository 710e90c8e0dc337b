"""Custom e-mail sending domains through Resend (resources.md §10)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

from flireo.domain.common import Timestamp, WireModel

_DOMAIN = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
ResendRegion = Literal["us-east-1", "eu-west-1", "sa-east-1", "ap-northeast-1"]


class DomainCreate(WireModel):
    domain_name: str = Field(
        pattern=_DOMAIN,
        max_length=253,
        validation_alias=AliasChoices("domain_name", "domain", "name"),
    )
    region: ResendRegion = "eu-west-1"


class DomainSync(WireModel):
    resend_domain_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9-]+$",
        validation_alias=AliasChoices("resend_domain_id", "domain_id", "id"),
    )


class DnsRecord(BaseModel):
    record: str | None = None
    type: str
    name: str
    value: str
    ttl: str | None = None
    priority: int | None = None
    status: str | None = None


class DnsCheck(BaseModel):
    type: str
    name: str
    expected: str
    found: list[str]
    ok: bool


class DomainOut(BaseModel):
    id: str
    domain_name: str
    resend_domain_id: str
    status: str
    region: str | None
    records: list[DnsRecord]
    dns_checks: list[DnsCheck] | None = None
    created_at: Timestamp
    updated_at: Timestamp


class DomainResponse(BaseModel):
    domain: DomainOut | None


class ResendDomainSummary(BaseModel):
    id: str
    name: str
    status: str | None = None
    region: str | None = None
    created_at: str | None = None


class ResendDomainList(BaseModel):
    domains: list[ResendDomainSummary]


def records_from_resend(raw: Any) -> list[dict[str, Any]]:
    """Resend's ``records`` array, normalised to :class:`DnsRecord` fields."""
    out: list[dict[str, Any]] = []
    for r in raw if isinstance(raw, list) else []:
        if not isinstance(r, dict) or not {"type", "name", "value"} <= r.keys():
            continue
        fields = {k: r.get(k) for k in DnsRecord.model_fields}
        if fields["ttl"] is not None:
            fields["ttl"] = str(fields["ttl"])
        out.append(DnsRecord.model_validate(fields).model_dump())
    return out
