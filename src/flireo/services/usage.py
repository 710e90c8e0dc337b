"""Reading usage: logs with filters, a summary over the same filters, and the
organization's account figures (all derived from the logs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.account import AccountOut
from flireo.domain.calls import ACTIVE_STATUSES
from flireo.domain.common import Page
from flireo.domain.usage import UsageLogOut, UsageSummary, VendorUsage
from flireo.errors import NotFound
from flireo.settings import Settings
from flireo.store.crud import count_owned
from flireo.store.tables import Agent, Call, Organization, PhoneNumber, UsageLog


def _filters(
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    agent_id: str | None,
    number_id: str | None,
) -> list[Any]:
    where: list[Any] = [UsageLog.org_id == org_id]
    if start:
        where.append(UsageLog.created_at >= start)
    if end:
        where.append(UsageLog.created_at <= end)
    if agent_id:
        where.append(UsageLog.agent_id == agent_id)
    if number_id:
        where.append(UsageLog.number_id == number_id)
    return where


async def usage_logs(
    session: AsyncSession,
    org_id: str,
    page: Page,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    agent_id: str | None = None,
    number_id: str | None = None,
) -> tuple[Sequence[UsageLog], dict[str, Any]]:
    where = _filters(org_id, start, end, agent_id, number_id)
    totals = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(UsageLog.minutes_used), 0),
                func.coalesce(func.sum(UsageLog.duration_seconds), 0),
                func.coalesce(func.sum(UsageLog.cost), 0),
                func.coalesce(func.sum(UsageLog.stt_seconds), 0.0),
                func.coalesce(func.sum(UsageLog.llm_prompt_tokens), 0),
                func.coalesce(func.sum(UsageLog.llm_completion_tokens), 0),
                func.coalesce(func.sum(UsageLog.tts_characters), 0),
            ).where(*where)
        )
    ).one()
    rows = (
        await session.execute(
            select(UsageLog)
            .where(*where)
            .order_by(UsageLog.created_at.desc(), UsageLog.id)
            .limit(page.limit)
            .offset(page.offset)
        )
    ).scalars()
    keys = ("count", "minutes", "seconds", "cost", "stt", "prompt", "completion", "tts")
    return rows.all(), dict(zip(keys, totals, strict=True))


def log_out(row: UsageLog) -> UsageLogOut:
    return UsageLogOut(
        id=row.id,
        call_id=row.call_id,
        agent_id=row.agent_id,
        number_id=row.number_id,
        direction=row.direction,
        phone_number=row.phone_number,
        duration_seconds=row.duration_seconds,
        minutes_used=row.minutes_used,
        cost=float(row.cost),
        vendor_usage=VendorUsage(
            stt_seconds=row.stt_seconds,
            llm_prompt_tokens=row.llm_prompt_tokens,
            llm_completion_tokens=row.llm_completion_tokens,
            tts_characters=row.tts_characters,
        ),
        created_at=row.created_at,
    )


def summary_out(totals: dict[str, Any], settings: Settings) -> UsageSummary:
    return UsageSummary(
        total_minutes=int(totals["minutes"]),
        total_seconds=int(totals["seconds"]),
        total_cost=float(round(Decimal(totals["cost"]), 4)),
        total_calls=int(totals["count"]),
        currency=settings.currency,
        price_per_minute=float(settings.price_per_minute),
        vendor_usage=VendorUsage(
            stt_seconds=float(totals["stt"]),
            llm_prompt_tokens=int(totals["prompt"]),
            llm_completion_tokens=int(totals["completion"]),
            tts_characters=int(totals["tts"]),
        ),
    )


def month_start(now: datetime) -> datetime:
    """The 1st of ``now``'s month, 00:00 UTC (when ``monthly_usage_minutes`` resets)."""
    now = now.astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def account(
    session: AsyncSession, org_id: str, settings: Settings, now: datetime
) -> AccountOut:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound("Organization not found")
    monthly = (
        await session.execute(
            select(func.coalesce(func.sum(UsageLog.minutes_used), 0)).where(
                UsageLog.org_id == org_id, UsageLog.created_at >= month_start(now)
            )
        )
    ).scalar_one()
    return AccountOut(
        id=org.id,
        name=org.name,
        company_name=org.name,
        email=org.email,
        minutes_balance=org.minutes_balance,
        monthly_usage_minutes=int(monthly),
        active_numbers=await count_owned(session, PhoneNumber, org_id),
        active_agents=await count_owned(session, Agent, org_id, Agent.is_active.is_(True)),
        active_calls=await count_owned(session, Call, org_id, Call.status.in_(ACTIVE_STATUSES)),
        max_concurrent_calls=org.max_concurrent_calls,
        reserved_inbound_calls=org.reserved_inbound_calls,
        price_per_minute=float(settings.price_per_minute),
        currency=settings.currency,
        recording_retention_days=org.recording_retention_days,
    )
