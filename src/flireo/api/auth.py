"""``Authorization: Bearer flk_...`` → the organization the key belongs to."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update

from flireo.errors import Unauthorized
from flireo.security.api_keys import hash_api_key
from flireo.services.container import Services
from flireo.store.tables import ApiKey

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer flk_...`")

_LAST_USED_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    key_id: str


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
    svc = services(request)
    key_hash = hash_api_key(credentials.credentials)
    async with svc.db.read() as session:
        key = (
            await session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
        ).scalar_one_or_none()
    if key is None:
        raise Unauthorized("Invalid API key")
    now = svc.clock.now()
    if key.revoked_at is not None:
        raise Unauthorized("This API key has been revoked", code="api_key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("This API key has expired", code="api_key_expired")
    seen = svc.key_last_used
    if time.monotonic() - seen.get(key.id, -_LAST_USED_EVERY) >= _LAST_USED_EVERY:
        seen[key.id] = time.monotonic()
        async with svc.db.transaction() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now)
            )
    return Principal(org_id=key.org_id, key_id=key.id)
