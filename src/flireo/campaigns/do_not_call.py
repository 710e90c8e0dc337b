"""The organization's do-not-call list as the dialer and the call engine use it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import phonenumbers
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.clock import utcnow
from flireo.store.db import Database
from flireo.store.tables import DoNotCall

REASON_MAX = 500


def normalise_number(phone_number: str) -> str:
    """E.164 when the number parses (``+31 6 1234 5678`` → ``+31612345678``)."""
    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException:
        return phone_number.strip()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


async def add_to_do_not_call(
    db: Database,
    org_id: str,
    phone_number: str,
    reason: str | None,
    source: str,
    *,
    now: datetime | None = None,
) -> bool:
    """Put a number on the organization's list (``source``: ``caller-request``,
    ``agent`` or ``api``). True when it was added, False when it was already
    there (the first entry is kept). Safe to call from any process at any time."""
    values = {
        "org_id": org_id,
        "phone_number": normalise_number(phone_number),
        "reason": reason[:REASON_MAX] if reason else None,
        "source": source,
        "created_at": now or utcnow(),
    }
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    stmt = insert(DoNotCall).values(**values).on_conflict_do_nothing()
    async with db.transaction() as s:
        result = await s.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def blocked_numbers(s: AsyncSession, org_id: str, numbers: Collection[str]) -> set[str]:
    """Which of ``numbers`` are on the organization's list."""
    if not numbers:
        return set()
    rows = await s.execute(
        select(DoNotCall.phone_number).where(
            DoNotCall.org_id == org_id, DoNotCall.phone_number.in_(list(numbers))
        )
    )
    return set(rows.scalars().all())
