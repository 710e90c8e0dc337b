"""Call records: ids, status transitions, queries and their wire form.

``set_status`` is the single place a call changes status. A final status is
written once: later attempts are no-ops, so every call ends exactly once.
"""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.calls import (
    FINAL_STATUSES,
    CallDetailOut,
    CallOut,
    WebhookAttemptOut,
    WebhookEventOut,
    WebhookLog,
)
from flireo.domain.common import Page
from flireo.recordings.links import links_for
from flireo.recordings.service import recording_fields
from flireo.settings import Settings
from flireo.store.crud import get_owned
from flireo.store.tables import Call, PhoneNumber, WebhookAttempt, WebhookEvent
from flireo.webhooks.payloads import call_type

_ALNUM = string.ascii_letters + string.digits

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "connecting": frozenset({"ringing", "in-progress", "ended", "failed", "rejected"}),
    "dialing": frozenset({"ringing", "in-progress", "ended", "failed"}),
    "ringing": frozenset({"in-progress", "ended", "failed", "rejected"}),
    "in-progress": frozenset({"ended", "failed"}),
}


def _token(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def inbound_call_id(caller: str | None) -> str:
    """``call-_<caller E.164>_<random>`` as in the Flireo docs."""
    return f"call-_{caller or 'anonymous'}_{_token(12)}"


def outbound_call_id() -> tuple[str, str]:
    """(call id, room name) for an outbound call."""
    return f"call-outbound-{_token(12)}", f"outbound-{_token(8).lower()}"


def set_status(
    call: Call,
    status: str,
    *,
    now: datetime,
    ended_reason: str | None = None,
    error: str | None = None,
) -> bool:
    """Move ``call`` to ``status``; False (and no change) when not allowed."""
    if status == call.status or status not in ALLOWED_TRANSITIONS.get(call.status, frozenset()):
        return False
    call.status = status
    if status == "in-progress" and call.started_at is None:
        call.started_at = now
    if status in FINAL_STATUSES:
        call.ended_at = now
        call.duration_seconds = (
            max(0, math.ceil((now - call.started_at).total_seconds())) if call.started_at else 0
        )
        call.ended_reason = ended_reason or call.ended_reason
        if error is not None:
            call.error = error
    return True


async def list_calls(
    session: AsyncSession,
    org_id: str,
    page: Page,
    *,
    status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    agent_id: str | None = None,
    campaign_id: str | None = None,
) -> tuple[Sequence[Call], int]:
    where: list[Any] = [Call.org_id == org_id]
    if status:
        where.append(Call.status == status)
    if start:
        where.append(Call.created_at >= start)
    if end:
        where.append(Call.created_at <= end)
    if agent_id:
        where.append(Call.agent_id == agent_id)
    if campaign_id:
        where.append(Call.campaign_id == campaign_id)
    total = (
        await session.execute(select(func.count()).select_from(Call).where(*where))
    ).scalar_one()
    rows = (
        await session.execute(
            select(Call)
            .where(*where)
            .order_by(Call.created_at.desc(), Call.id)
            .limit(page.limit)
            .offset(page.offset)
        )
    ).scalars()
    return rows.all(), int(total)


async def get_call(session: AsyncSession, org_id: str, call_id: str) -> Call:
    return await get_owned(session, Call, org_id, call_id, what="Call")


def _common(call: Call, phone_number: str | None) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": call_type(call.direction),
        "direction": call.direction,
        "caller_phone": call.caller_phone,
        "assistant_phone": call.assistant_phone,
        "status": call.status,
        "error": call.error,
        "ended_reason": call.ended_reason,
        "started_at": call.started_at,
        "ended_at": call.ended_at,
        "duration_seconds": call.duration_seconds,
        "summary": call.summary,
        "agent_name": call.agent_name,
        "business_name": call.business_name,
        "agent_id": call.agent_id,
        "number_id": call.number_id,
        "phone_number": phone_number or call.assistant_phone,
        "campaign_id": call.campaign_id,
        "cost": float(call.cost) if call.cost is not None else None,
        "created_at": call.created_at,
        "updated_at": call.updated_at,
    }


def _recording(call: Call, settings: Settings | None, now: datetime | None) -> dict[str, Any]:
    if settings is None or now is None or call.recording_status != "stored":
        return {}
    return recording_fields(call, links_for(settings), now)


def call_out(call: Call, settings: Settings | None = None, now: datetime | None = None) -> CallOut:
    """``settings``/``now``: for the signed recording links (null without)."""
    return CallOut.model_validate({**_common(call, None), **_recording(call, settings, now)})


async def call_detail(
    session: AsyncSession, call: Call, settings: Settings | None = None, now: datetime | None = None
) -> CallDetailOut:
    number = await session.get(PhoneNumber, call.number_id) if call.number_id else None
    return CallDetailOut.model_validate(
        {
            **_common(call, number.phone_number if number else None),
            **_recording(call, settings, now),
            "analysis_result": call.analysis_result,
            "messages": call.messages or [],
            "transcript": call.transcript,
            "metrics": call.metrics,
            "recording_status": call.recording_status,
            "recording_format": call.recording_format,
            "recording_duration_seconds": call.recording_duration_seconds,
            "recording_error": call.recording_error,
        }
    )


async def webhook_log(session: AsyncSession, call: Call) -> WebhookLog:
    events = (
        (
            await session.execute(
                select(WebhookEvent)
                .where(WebhookEvent.call_id == call.id)
                .order_by(WebhookEvent.seq)
            )
        )
        .scalars()
        .all()
    )
    attempts = (
        (
            await session.execute(
                select(WebhookAttempt)
                .where(WebhookAttempt.event_id.in_([e.id for e in events]))
                .order_by(WebhookAttempt.attempt)
            )
        )
        .scalars()
        .all()
    )
    by_event: dict[str, list[WebhookAttemptOut]] = {}
    for a in attempts:
        by_event.setdefault(a.event_id, []).append(WebhookAttemptOut.model_validate(a))
    return WebhookLog(
        webhooks=[
            WebhookEventOut.model_validate(
                {
                    **{k: getattr(e, k) for k in WebhookEventOut.model_fields if hasattr(e, k)},
                    "deliveries": by_event.get(e.id, []),
                }
            )
            for e in events
        ]
    )
