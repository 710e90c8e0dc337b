"""``POST /calls/outbound``: validate, store the call as ``dialing``, hand it to the dialer."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.calls import DialEndedReason, OutboundCallRequest, OutboundCallResponse
from flireo.errors import InvalidRequest, PaymentRequired, Unprocessable
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.calls import outbound_call_id
from flireo.services.container import Services
from flireo.services.dial_policy import DialRefused, check_capacity, check_destination, policy_for
from flireo.store.crud import get_owned
from flireo.store.tables import Agent, Call, Organization, PhoneNumber

log = structlog.get_logger(__name__)

INSUFFICIENT_CREDITS = (
    "Insufficient credits to make outbound call. Please add credits in your billing dashboard."
)


async def caller_number(
    session: AsyncSession, org_id: str, number_id: str | None, *, param: str = "number_id"
) -> PhoneNumber:
    """The organization's number to call from: the one asked for, or the first with a trunk."""
    if number_id is not None:
        number = await get_owned(
            session, PhoneNumber, org_id, number_id, what="Phone number", param=param
        )
        if number.transfer_trunk_id is None:
            raise Unprocessable(
                f"Number {number.phone_number} has no SIP trunk (transfer_trunk_id) to dial out",
                param=param,
                code="number_has_no_trunk",
            )
        return number
    first = (
        await session.execute(
            select(PhoneNumber)
            .where(PhoneNumber.org_id == org_id, PhoneNumber.transfer_trunk_id.is_not(None))
            .order_by(PhoneNumber.created_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    if first is None:
        raise Unprocessable(
            "No number to call from: register a number with a SIP trunk (transfer_trunk_id)",
            param=param,
            code="no_outbound_number",
        )
    return first


def recording_override(enabled: bool | None) -> dict[str, Any] | None:
    """``Call.overrides`` of a call placed with ``recording_enabled`` (None: the agent decides)."""
    return None if enabled is None else {"recordingEnabled": enabled}


def lifecycle_of(svc: Services) -> CallLifecycle:
    """The call lifecycle for a request handler (its webhooks wake this process's deliverer)."""
    return CallLifecycle(svc.db, svc.settings, svc.clock, on_webhook=svc.kick_webhooks)


async def place_outbound_call(
    svc: Services, org_id: str, body: OutboundCallRequest
) -> OutboundCallResponse:
    call_id, room = outbound_call_id()
    refused: DialRefused | None = None
    async with svc.db.transaction() as s:
        agent = await get_owned(s, Agent, org_id, body.agent_id, what="Agent", param="agent_id")
        if not agent.is_active:
            raise InvalidRequest("Agent is inactive", param="agent_id", code="agent_inactive")
        # locked (PostgreSQL): concurrent dials of one organization are counted one by one
        org = await s.get(Organization, org_id, with_for_update=True)
        if org is None or org.minutes_balance <= 0:
            raise PaymentRequired(INSUFFICIENT_CREDITS)
        number = await caller_number(s, org_id, body.number_id)
        policy = await policy_for(s, org, svc.settings)
        try:
            check_destination(policy, body.destination)
            await check_capacity(s, org_id, policy, svc.clock.now())
        except DialRefused as exc:
            refused = exc
        s.add(
            Call(
                id=call_id,
                org_id=org_id,
                agent_id=agent.id,
                number_id=number.id,
                direction="outbound",
                caller_phone=body.destination,
                assistant_phone=number.phone_number,
                # a refused call is recorded too, and ends at once as ``rejected``
                status="dialing" if refused is None else "connecting",
                agent_name=agent.name,
                business_name=agent.business_name,
                room_name=room,
                first_message=body.first_message,
                context=body.context,
                overrides=recording_override(body.recording_enabled),
            )
        )
    if refused is not None:
        await lifecycle_of(svc).finish(
            call_id,
            CallCompletion(
                status="rejected", ended_reason=refused.ended_reason, error=refused.message
            ),
        )
        raise DialRefused(
            f"{refused.message} (recorded as call {call_id})",
            code=refused.code,
            param=refused.param,
        )
    try:
        await svc.dialer.dial(call_id)
    except Exception as exc:  # ends once: status, report and usage (not a bare status)
        log.exception("dialer refused call", call_id=call_id)
        await lifecycle_of(svc).finish(
            call_id,
            CallCompletion(
                status="failed",
                ended_reason=DialEndedReason.FAILED,
                error=str(exc) or type(exc).__name__,
            ),
        )
    return OutboundCallResponse(call_id=call_id, room_name=room)
