"""Usage and balance: one usage log per call, the balance debited atomically.

Minutes are whole started minutes (84 s → 2). The debit is a single
``UPDATE ... SET minutes_balance = minutes_balance - n`` in the transaction that
writes the log, and the log's unique ``call_id`` makes it happen once per call,
so the balance always equals the initial balance minus the logged minutes.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.usage import VendorUsage
from flireo.store.tables import Call, Organization, PhoneNumber, UsageLog


def billable_minutes(seconds: int) -> int:
    return math.ceil(seconds / 60) if seconds > 0 else 0


def cost_of(minutes: int, price_per_minute: Decimal) -> Decimal:
    return (price_per_minute * minutes).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


async def record_usage(
    session: AsyncSession, call: Call, usage: VendorUsage, price_per_minute: Decimal
) -> UsageLog:
    """The call's usage log (created once; later calls return the existing one)."""
    with session.no_autoflush:  # the call's pending changes go out with the log, at once
        existing = (
            await session.execute(select(UsageLog).where(UsageLog.call_id == call.id))
        ).scalar_one_or_none()
        if existing is not None:
            return existing
        number = (  # the number the call was made with is on the call already
            await session.get(PhoneNumber, call.number_id)
            if call.number_id and not call.assistant_phone
            else None
        )
    seconds = call.duration_seconds or 0
    minutes = billable_minutes(seconds)
    cost = cost_of(minutes, price_per_minute)
    log = UsageLog(
        org_id=call.org_id,
        call_id=call.id,
        agent_id=call.agent_id,
        number_id=call.number_id,
        direction=call.direction,
        phone_number=number.phone_number if number else call.assistant_phone,
        duration_seconds=seconds,
        minutes_used=minutes,
        cost=cost,
        stt_seconds=usage.stt_seconds,
        llm_prompt_tokens=usage.llm_prompt_tokens,
        llm_completion_tokens=usage.llm_completion_tokens,
        tts_characters=usage.tts_characters,
        vendor_usage=usage.model_dump(),
    )
    call.cost = cost  # before the flush: one UPDATE of the call, not two
    session.add(log)
    await session.flush()
    if minutes:
        await session.execute(
            update(Organization)
            .where(Organization.id == call.org_id)
            .values(minutes_balance=Organization.minutes_balance - minutes)
        )
    return log


async def has_credit(session: AsyncSession, org_id: str) -> bool:
    balance = (
        await session.execute(select(Organization.minutes_balance).where(Organization.id == org_id))
    ).scalar_one_or_none()
    return balance is not None and balance > 0
