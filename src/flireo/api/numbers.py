"""``/numbers`` (resources.md §3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.domain.numbers import NumberCreate, NumberOut, NumberUpdate
from flireo.services.container import Services
from flireo.store.crud import flush_unique, get_owned, list_owned
from flireo.store.tables import Agent, PhoneNumber, SipTrunk

router = APIRouter(
    prefix="/numbers", tags=["Phone numbers"], responses=error_responses(400, 401, 413, 429)
)


class NumberEnvelope(BaseModel):
    number: NumberOut


class NumberList(BaseModel):
    numbers: list[NumberOut]


async def _check_refs(
    s: AsyncSession, org_id: str, body: NumberCreate | NumberUpdate, fields: set[str]
) -> None:
    if "agent_id" in fields and body.agent_id is not None:
        await get_owned(s, Agent, org_id, body.agent_id, what="Agent", param="agent_id")
    if "transfer_trunk_id" in fields and body.transfer_trunk_id is not None:
        await get_owned(
            s, SipTrunk, org_id, body.transfer_trunk_id, what="SIP trunk", param="transfer_trunk_id"
        )


@router.get("", response_model=NumberList, summary="List all phone numbers")
async def list_numbers(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> NumberList:
    async with svc.db.read() as s:
        rows = await list_owned(s, PhoneNumber, who.org_id)
    return NumberList(numbers=[NumberOut.model_validate(r) for r in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NumberEnvelope,
    summary="Register a phone number (forwarded to this server over SIP)",
    responses=error_responses(404, 409),
)
async def register_number(
    body: NumberCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> NumberEnvelope:
    async with svc.db.transaction() as s:
        await _check_refs(s, who.org_id, body, set(body.model_fields_set))
        row = PhoneNumber(org_id=who.org_id, **body.model_dump())
        s.add(row)
        await flush_unique(s, f"{body.phone_number} is already registered", param="phone_number")
    return NumberEnvelope(number=NumberOut.model_validate(row))


@router.get(
    "/{number_id}",
    response_model=NumberEnvelope,
    summary="Get a phone number",
    responses=error_responses(404),
)
async def get_number(
    number_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> NumberEnvelope:
    async with svc.db.read() as s:
        row = await get_owned(s, PhoneNumber, who.org_id, number_id, what="Phone number")
    return NumberEnvelope(number=NumberOut.model_validate(row))


@router.patch(
    "/{number_id}",
    response_model=NumberEnvelope,
    summary="Update a phone number (agent_id null unassigns it)",
    responses=error_responses(404),
)
async def update_number(
    number_id: str,
    body: NumberUpdate,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> NumberEnvelope:
    async with svc.db.transaction() as s:
        row = await get_owned(s, PhoneNumber, who.org_id, number_id, what="Phone number")
        fields = set(body.model_fields_set)
        await _check_refs(s, who.org_id, body, fields)
        for key, value in body.model_dump(include=fields).items():
            setattr(row, key, value)
        await s.flush()
    return NumberEnvelope(number=NumberOut.model_validate(row))


@router.delete(
    "/{number_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a phone number",
    responses=error_responses(404),
)
async def delete_number(
    number_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    async with svc.db.transaction() as s:
        row = await get_owned(s, PhoneNumber, who.org_id, number_id, what="Phone number")
        await s.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
