"""``/sip-trunks`` (resources.md §7). Passwords go to the vault and are never returned."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.domain.numbers import SipTrunkCreate, SipTrunkOut
from flireo.services.container import Services
from flireo.services.targets import check_sip_target
from flireo.store.crud import flush_unique, get_owned, list_owned
from flireo.store.tables import SipTrunk

router = APIRouter(
    prefix="/sip-trunks", tags=["SIP trunks"], responses=error_responses(400, 401, 413, 429)
)


class SipTrunkEnvelope(BaseModel):
    sip_trunk: SipTrunkOut


class SipTrunkList(BaseModel):
    trunks: list[SipTrunkOut]


def _out(row: SipTrunk) -> SipTrunkOut:
    return SipTrunkOut.model_validate(
        {
            **{k: getattr(row, k) for k in SipTrunkOut.model_fields if hasattr(row, k)},
            "has_password": row.password_secret_id is not None,
        }
    )


@router.get("", response_model=SipTrunkList, summary="List SIP trunks")
async def list_trunks(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> SipTrunkList:
    async with svc.db.read() as s:
        rows = await list_owned(s, SipTrunk, who.org_id)
    return SipTrunkList(trunks=[_out(r) for r in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SipTrunkEnvelope,
    summary="Create a SIP trunk",
    responses=error_responses(409),
)
async def create_trunk(
    body: SipTrunkCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> SipTrunkEnvelope:
    await check_sip_target(body.host, body.port, svc.settings, "host")
    async with svc.db.transaction() as s:
        row = SipTrunk(org_id=who.org_id, **body.model_dump(exclude={"password"}))
        if body.password:
            secret = await svc.vault.put(s, who.org_id, "sip_trunk_password", body.password)
            row.password_secret_id = secret.id
        s.add(row)
        await flush_unique(s, f"A SIP trunk named {body.name!r} exists", param="name")
    return SipTrunkEnvelope(sip_trunk=_out(row))


@router.get(
    "/{trunk_id}",
    response_model=SipTrunkEnvelope,
    summary="Get a SIP trunk",
    responses=error_responses(404),
)
async def get_trunk(
    trunk_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> SipTrunkEnvelope:
    async with svc.db.read() as s:
        row = await get_owned(s, SipTrunk, who.org_id, trunk_id, what="SIP trunk")
    return SipTrunkEnvelope(sip_trunk=_out(row))


@router.delete(
    "/{trunk_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a SIP trunk (numbers using it lose their trunk)",
    responses=error_responses(404),
)
async def delete_trunk(
    trunk_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    async with svc.db.transaction() as s:
        row = await get_owned(s, SipTrunk, who.org_id, trunk_id, what="SIP trunk")
        secret_id = row.password_secret_id
        await s.delete(row)
        await s.flush()
        if secret_id:
            await svc.vault.delete(s, who.org_id, secret_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
