"""Organizations and their API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.errors import NotFound
from flireo.security.api_keys import display_prefix, generate_api_key, hash_api_key
from flireo.store.tables import ApiKey, Organization


async def create_organization(
    session: AsyncSession, name: str, *, minutes_balance: int = 0, email: str | None = None
) -> Organization:
    org = Organization(name=name, minutes_balance=minutes_balance, email=email)
    session.add(org)
    await session.flush()
    return org


async def create_api_key(
    session: AsyncSession, org_id: str, name: str = "default", *, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new key row and the key itself (shown once, never stored)."""
    key = generate_api_key()
    row = ApiKey(
        org_id=org_id,
        name=name,
        prefix=display_prefix(key),
        key_hash=hash_api_key(key),
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return row, key


async def list_api_keys(session: AsyncSession, org_id: str | None = None) -> Sequence[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.created_at)
    if org_id:
        stmt = stmt.where(ApiKey.org_id == org_id)
    return (await session.execute(stmt)).scalars().all()


async def revoke_api_key(session: AsyncSession, key_id_or_prefix: str, now: datetime) -> ApiKey:
    row = await session.get(ApiKey, key_id_or_prefix)
    if row is None:
        matches = (
            (await session.execute(select(ApiKey).where(ApiKey.prefix == key_id_or_prefix)))
            .scalars()
            .all()
        )
        if len(matches) != 1:
            raise NotFound(f"no single API key with id or prefix {key_id_or_prefix!r}")
        row = matches[0]
    if row.revoked_at is None:
        row.revoked_at = now
    return row


async def first_organization(session: AsyncSession) -> Organization | None:
    return (
        await session.execute(select(Organization).order_by(Organization.created_at).limit(1))
    ).scalar_one_or_none()


async def organization_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Organization))).scalar_one())


async def bootstrap(session: AsyncSession, initial_minutes: int) -> str | None:
    """On an empty database: create the first organization and return its API key."""
    if await organization_count(session):
        return None
    org = await create_organization(session, "My Organization", minutes_balance=initial_minutes)
    _, key = await create_api_key(session, org.id, "bootstrap")
    return key
