"""``Authorization: Bearer flk_...`` → the organization the key belongs to.

Also the two limits that need to know who is asking: the per-key request limit
(keyed on the authenticated key's id, so ``bearer K`` and ``Bearer  K`` share a
bucket) and the per-address limit on failed authentications (checked *before*
the key is looked up, so a guesser over the limit learns nothing more).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NoReturn

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update

from flireo.api.ratelimit import Window
from flireo.domain.common import text_problem
from flireo.errors import InvalidRequest, RateLimited, Unauthorized
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


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``: the scheme in any case,
    any amount of surrounding whitespace; None when there is none."""
    if not header:
        return None
    parts = header.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1].strip() or None


def client_address(request: Request) -> str:
    """The peer address (uvicorn's ``--proxy-headers`` puts the forwarded one here)."""
    return request.client.host if request.client else "unknown"


#: ``request.state`` attribute the rate-limit middleware reads its headers from
STATE_WINDOW = "rate_limit_window"


async def _failed(request: Request, svc: Services, fail_key: str, error: Unauthorized) -> NoReturn:
    window = await svc.limiter.hit(fail_key, svc.settings.auth_failures_per_minute)
    setattr(request.state, STATE_WINDOW, window)
    raise error


def _check_url_text(request: Request) -> None:
    """Path and query values are identifiers: the body's text rule
    (:func:`flireo.domain.common.text_problem`) applies to them too, here, once
    for every authenticated route (a NUL in an id is a 500 on PostgreSQL)."""
    values = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in values:
        problem = text_problem(value, free=False) or text_problem(name, free=False)
        if problem is not None:
            raise InvalidRequest(f"Invalid value for {name!r}: {problem}", param=name)


def _too_many_failures(window: Window, now: float) -> RateLimited:
    retry = window.retry_after(now)
    return RateLimited(
        "Too many failed authentication attempts from this address. "
        f"Please retry after {retry} seconds.",
        retry_after=retry,
    )


async def principal(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    svc = services(request)
    fail_key = "authfail:" + client_address(request)
    failures = await svc.limiter.peek(fail_key, svc.settings.auth_failures_per_minute)
    if not failures.allowed:
        setattr(request.state, STATE_WINDOW, failures)
        raise _too_many_failures(failures, time.time())
    token = bearer_token(request.headers.get("authorization"))
    if token is None:  # no guess made: not counted (the per-address request limit applies)
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
    key_hash = hash_api_key(token)
    async with svc.db.read() as session:
        key = (
            await session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
        ).scalar_one_or_none()
    if key is None:
        await _failed(request, svc, fail_key, Unauthorized("Invalid API key"))
    now = svc.clock.now()
    if key.revoked_at is not None:
        revoked = Unauthorized("This API key has been revoked", code="api_key_revoked")
        await _failed(request, svc, fail_key, revoked)
    if key.expires_at is not None and key.expires_at <= now:
        expired = Unauthorized("This API key has expired", code="api_key_expired")
        await _failed(request, svc, fail_key, expired)
    window = await svc.limiter.hit("key:" + key.id, svc.settings.rate_limit_per_minute)
    setattr(request.state, STATE_WINDOW, window)
    if not window.allowed:
        retry = window.retry_after(time.time())
        raise RateLimited(
            f"Too many requests. Please retry after {retry} seconds.", retry_after=retry
        )
    _check_url_text(request)
    seen = svc.key_last_used
    if time.monotonic() - seen.get(key.id, -_LAST_USED_EVERY) >= _LAST_USED_EVERY:
        seen[key.id] = time.monotonic()
        async with svc.db.transaction() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now)
            )
    return Principal(org_id=key.org_id, key_id=key.id)
