"""``/do-not-call``: the organization's suppression list (campaigns never dial these)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Response, status
from sqlalchemy import func, select

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.api.pagination import page
from flireo.domain.common import E164_PATTERN, Page, Pagination
from flireo.domain.do_not_call import (
    DoNotCallCreate,
    DoNotCallEnvelope,
    DoNotCallList,
    DoNotCallOut,
)
from flireo.errors import NotFound
from flireo.services.container import Services
from flireo.store.crud import flush_unique
from flireo.store.tables import DoNotCall

router = APIRouter(
    prefix="/do-not-call", tags=["Do not call"], responses=error_responses(400, 401, 413, 429)
)

PhoneNumberPath = Path(
    pattern=E164_PATTERN,
    description="E.164 number; send the + URL-encoded as %2B",
    examples=["+31612345678"],
)


@router.get("", response_model=DoNotCallList, summary="List the do-not-call numbers (newest first)")
async def list_do_not_call(
    window: Page = Depends(page),
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> DoNotCallList:
    mine = DoNotCall.org_id == who.org_id
    async with svc.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(DoNotCall).where(mine))
        rows = (
            await s.execute(
                select(DoNotCall)
                .where(mine)
                .order_by(DoNotCall.created_at.desc(), DoNotCall.phone_number)
                .limit(window.limit)
                .offset(window.offset)
            )
        ).scalars()
        entries = [DoNotCallOut.model_validate(r) for r in rows]
    return DoNotCallList(
        entries=entries,
        pagination=Pagination(total=total or 0, limit=window.limit, offset=window.offset),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DoNotCallEnvelope,
    summary="Add a number to the do-not-call list",
    responses=error_responses(409),
)
async def add_do_not_call(
    body: DoNotCallCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> DoNotCallEnvelope:
    async with svc.db.transaction() as s:
        row = DoNotCall(
            org_id=who.org_id,
            phone_number=body.phone_number,
            reason=body.reason,
            source="api",
            created_at=svc.clock.now(),
        )
        s.add(row)
        await flush_unique(
            s, f"{body.phone_number} is already on the do-not-call list", param="phone_number"
        )
    return DoNotCallEnvelope(entry=DoNotCallOut.model_validate(row))


@router.delete(
    "/{phone_number}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a number from the do-not-call list",
    responses=error_responses(404),
)
async def remove_do_not_call(
    phone_number: str = PhoneNumberPath,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> Response:
    async with svc.db.transaction() as s:
        row = await s.get(DoNotCall, (who.org_id, phone_number))
        if row is None:
            raise NotFound("Number is not on the do-not-call list", param="phone_number")
        await s.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
