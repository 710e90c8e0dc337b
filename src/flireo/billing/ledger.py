"""Usage and balance: one usage log per call, the balance debited atomically.

Minutes are whole started minutes (84 s → 2). The debit is a single
``UPDATE ... SET minutes_balance = minutes_balance - n`` in the transaction that
writes the log, and the log's unique ``call_id`` makes it happen once per call,
so the balance always equals the initial balance minus the logged minutes.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.clock import utcnow
from flireo.domain.usage import VendorUsage
from flireo.store.tables import Call, Organization, PhoneNumber, UsageLog, new_id

#: Core statements on the tables: the call's row is known, no ORM unit of work needed
_USAGE: Final[Table] = UsageLog.__table__  # type: ignore[assignment]
_ORGS: Final[Table] = Organization.__table__  # type: ignore[assignment]
_INSERT_ONCE: dict[str, Any] = {}
#: the balance debit, built once: ``minutes_balance - :minutes`` in the statement
_DEBIT: Final = (
    update(_ORGS)
    .where(_ORGS.c.id == bindparam("org"))
    .values(minutes_balance=_ORGS.c.minutes_balance - bindparam("minutes"))
)


def billable_minutes(seconds: int) -> int:
    return math.ceil(seconds / 60) if seconds > 0 else 0


def cost_of(minutes: int, price_per_minute: Decimal) -> Decimal:
    return (price_per_minute * minutes).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


async def record_usage(
    session: AsyncSession, call: Call, usage: VendorUsage, price_per_minute: Decimal
) -> bool:
    """Write the call's usage log and debit its minutes; False (nothing written or
    debited) when the call already has one. Sets ``call.cost`` (flushed with the
    call's other changes). Core statements: the log's INSERT skips a duplicate
    ``call_id`` (the unique index), and the debit runs only when the log went in."""
    with session.no_autoflush:  # the call's pending changes go out once, at the commit
        number = (  # the number the call was made with is on the call already
            await session.get(PhoneNumber, call.number_id)
            if call.number_id and not call.assistant_phone
            else None
        )
    seconds = call.duration_seconds or 0
    minutes = billable_minutes(seconds)
    cost = cost_of(minutes, price_per_minute)
    values = {
        "id": new_id(),
        "org_id": call.org_id,
        "call_id": call.id,
        "agent_id": call.agent_id,
        "number_id": call.number_id,
        "direction": call.direction,
        "phone_number": number.phone_number if number else call.assistant_phone,
        "duration_seconds": seconds,
        "minutes_used": minutes,
        "cost": cost,
        "stt_seconds": usage.stt_seconds,
        "llm_prompt_tokens": usage.llm_prompt_tokens,
        "llm_completion_tokens": usage.llm_completion_tokens,
        "tts_characters": usage.tts_characters,
        "vendor_usage": usage.model_dump(),
        "created_at": utcnow(),
    }
    with session.no_autoflush:  # Core statements: the call's UPDATE waits for the commit
        insert_once = _insert_once(session.get_bind().dialect.name)
        written = await session.execute(insert_once, values)
        if not _rowcount(written):
            return False
        call.cost = cost
        if minutes:
            await session.execute(_DEBIT, {"org": call.org_id, "minutes": minutes})
    return True


def _insert_once(dialect: str) -> Any:
    """The usage log's INSERT that skips a duplicate ``call_id`` (built once per dialect)."""
    statement = _INSERT_ONCE.get(dialect)
    if statement is None:
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = make(_USAGE).on_conflict_do_nothing(index_elements=["call_id"])
        _INSERT_ONCE[dialect] = statement
    return statement


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def has_credit(session: AsyncSession, org_id: str) -> bool:
    balance = (
        await session.execute(select(Organization.minutes_balance).where(Organization.id == org_id))
    ).scalar_one_or_none()
    return balance is not None and balance > 0
