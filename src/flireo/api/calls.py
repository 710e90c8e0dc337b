"""``/calls`` and ``/calls/{id}/control`` (resources.md §4, §5)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.api.pagination import page
from flireo.domain.calls import (
    CallDetailOut,
    CallOut,
    CallStatus,
    ControlCommand,
    OutboundCallRequest,
    OutboundCallResponse,
    Transfer,
    WebhookEventOut,
    WebhookLog,
)
from flireo.domain.common import IsoDateTime, Page, Pagination, SuccessMessage
from flireo.errors import InvalidRequest, RateLimited
from flireo.services import calls as svc_calls
from flireo.services.container import Services
from flireo.services.dial_policy import check_transfer
from flireo.services.outbound import place_outbound_call
from flireo.services.targets import check_sip_uri_target
from flireo.webhooks.delivery import redeliver

router = APIRouter(prefix="/calls", tags=["Calls"], responses=error_responses(400, 401, 413, 429))


class CallList(BaseModel):
    calls: list[CallOut]
    pagination: Pagination


@router.get("", response_model=CallList, summary="List calls (newest first)")
async def list_calls(
    status: CallStatus | None = Query(None, description="Only calls in this status"),
    start_date: IsoDateTime | None = Query(
        None, description="Created at or after (ISO-8601); not after end_date (else 400)"
    ),
    end_date: IsoDateTime | None = Query(
        None, description="Created at or before (ISO-8601); not before start_date (else 400)"
    ),
    agent_id: str | None = Query(None),
    campaign_id: str | None = Query(None),
    window: Page = Depends(page),
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> CallList:
    if start_date and end_date and start_date > end_date:
        raise InvalidRequest("start_date is after end_date", param="start_date")
    async with svc.db.read() as s:
        rows, total = await svc_calls.list_calls(
            s,
            who.org_id,
            window,
            status=status,
            start=start_date,
            end=end_date,
            agent_id=agent_id,
            campaign_id=campaign_id,
        )
    return CallList(
        calls=[svc_calls.call_out(c, svc.settings, svc.clock.now()) for c in rows],
        pagination=Pagination(total=total, limit=window.limit, offset=window.offset),
    )


@router.post(
    "/outbound",
    response_model=OutboundCallResponse,
    summary="Initiate an outbound call",
    responses=error_responses(402, 403, 404, 422),
)
async def create_outbound_call(
    body: OutboundCallRequest,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> OutboundCallResponse:
    return await place_outbound_call(svc, who.org_id, body)


@router.get(
    "/{call_id}",
    response_model=CallDetailOut,
    summary="Get a call with its transcript and analysis",
    responses=error_responses(404),
)
async def get_call(
    call_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> CallDetailOut:
    async with svc.db.read() as s:
        call = await svc_calls.get_call(s, who.org_id, call_id)
        return await svc_calls.call_detail(s, call, svc.settings, svc.clock.now())


@router.post(
    "/{call_id}/control",
    response_model=SuccessMessage,
    summary="Send a control command to an active call",
    responses=error_responses(403, 404),
)
async def control_call(
    call_id: str,
    body: ControlCommand,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> SuccessMessage:
    async with svc.db.read() as s:
        call = await svc_calls.get_call(s, who.org_id, call_id)
    not_active = InvalidRequest(
        f"Call is not active (status: {call.status})", code="call_not_active"
    )
    if call.status != "in-progress":
        raise not_active
    if isinstance(body, Transfer) and body.destination.startswith(("sip:", "sips:")):
        await check_sip_uri_target(body.destination, svc.settings, "destination")
    if isinstance(body, Transfer):  # refuse at once what cannot work or is not allowed
        async with svc.db.read() as s:
            await check_transfer(s, call, body.destination, svc.settings)
    ack = await svc.bus.send_control(call.id, body.model_dump(mode="json"))
    if ack is None:
        raise not_active
    if not ack.ok:
        if ack.code == "rate_limit_exceeded":
            raise RateLimited(
                ack.message or "Too many control commands for this call",
                retry_after=ack.retry_after or 60,
            )
        raise InvalidRequest(ack.message or "Command refused", code=ack.code or "invalid_request")
    return SuccessMessage(message="Command sent successfully")


@router.get(
    "/{call_id}/webhooks",
    response_model=WebhookLog,
    summary="The call's asynchronous webhooks and every delivery attempt",
    responses=error_responses(404),
)
async def call_webhooks(
    call_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> WebhookLog:
    async with svc.db.read() as s:
        call = await svc_calls.get_call(s, who.org_id, call_id)
        return await svc_calls.webhook_log(s, call)


@router.post(
    "/{call_id}/webhooks/{event_id}/redeliver",
    response_model=WebhookEventOut,
    summary="Deliver a webhook once more (same webhook-id)",
    responses=error_responses(404),
)
async def redeliver_webhook(
    call_id: str,
    event_id: str,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> WebhookEventOut:
    async with svc.db.read() as s:
        await svc_calls.get_call(s, who.org_id, call_id)
    await redeliver(svc.db, who.org_id, call_id, event_id, svc.clock.now())
    svc.kick_webhooks()
    async with svc.db.read() as s:
        call = await svc_calls.get_call(s, who.org_id, call_id)
        log = await svc_calls.webhook_log(s, call)
    return next(e for e in log.webhooks if e.id == event_id)
