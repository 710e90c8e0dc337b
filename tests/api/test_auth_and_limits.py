from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis

from flireo.api.app import create_app
from flireo.api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from flireo.services.container import Services
from flireo.services.organizations import create_api_key, revoke_api_key
from tests.api.conftest import MakeOrg, Org
from tests.conftest import skip_or_fail

UNAUTHORIZED = {"code": "unauthorized", "type": "authentication_error", "param": None}


async def test_missing_and_invalid_keys_are_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer flk_nope"}, {"Authorization": "Basic abc"}):
        r = await client.get("/agents", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        error = r.json()["error"]
        assert {k: error[k] for k in UNAUTHORIZED} == UNAUTHORIZED


async def test_revoked_key_stops_working_at_once(
    client: httpx.AsyncClient, services: Services, org: Org
) -> None:
    assert (await client.get("/agents", headers=org.headers)).status_code == 200
    async with services.db.transaction() as s:
        second, second_key = await create_api_key(s, org.id, "ci")
        await revoke_api_key(s, second.prefix, datetime.now(UTC))
    r = await client.get("/agents", headers={"Authorization": f"Bearer {second_key}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "api_key_revoked"
    assert (await client.get("/agents", headers=org.headers)).status_code == 200


async def test_expired_key(client: httpx.AsyncClient, services: Services, org: Org) -> None:
    async with services.db.transaction() as s:
        _, key = await create_api_key(
            s, org.id, expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
    r = await client.get("/agents", headers={"Authorization": f"Bearer {key}"})
    assert r.json()["error"]["code"] == "api_key_expired"


async def test_unknown_route_and_method(api: httpx.AsyncClient) -> None:
    r = await api.get("/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await api.put("/agents")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "GET, POST"
    r = await api.put("/calls/outbound")  # not the GET of /calls/{call_id}
    assert r.headers["allow"] == "POST"


async def test_oversized_body_is_413(api: httpx.AsyncClient, services: Services) -> None:
    services.settings.max_body_bytes = 1000
    big = {"name": "x", "first_message": "a" * 2000}
    r = await api.post("/agents", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: counted while streaming
        for _ in range(5):
            yield b" " * 400

    r = await api.post("/agents", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert (await api.get("/agents")).json() == {"agents": []}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_rate_limit_headers_and_429(services: Services, org: Org) -> None:
    services.settings.rate_limit_per_minute = 5
    app = create_app(services, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test/api/v1"
    ) as client:
        seen = []
        for _ in range(5):
            r = await client.get("/agents", headers=org.headers)
            assert r.status_code == 200
            seen.append(int(r.headers["x-ratelimit-remaining"]))
            assert r.headers["x-ratelimit-limit"] == "5"
            assert int(r.headers["x-ratelimit-reset"]) > datetime.now(UTC).timestamp()
        assert seen == [4, 3, 2, 1, 0]
        r = await client.get("/agents", headers=org.headers)
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert "retry after" in r.json()["error"]["message"]
        # another key has its own budget; even 401s carry the headers
        anon = await client.get("/agents")
        assert anon.status_code == 401
        assert "x-ratelimit-remaining" in anon.headers


def _limited_app(services: Services, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    app = create_app(services, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app, client=(peer, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://test/api/v1")


async def test_the_key_limit_is_keyed_on_the_key_not_the_header_spelling(
    services: Services, org: Org
) -> None:
    services.settings.rate_limit_per_minute = 4
    spellings = [
        f"Bearer {org.key}",
        f"bearer {org.key}",
        f"Bearer  {org.key}",
        f"BEARER {org.key} ",
    ]
    async with _limited_app(services) as client:
        remaining = []
        for header in spellings:
            r = await client.get("/agents", headers={"Authorization": header})
            assert r.status_code == 200, (header, r.text)
            remaining.append(r.headers["x-ratelimit-remaining"])
        assert remaining == ["3", "2", "1", "0"]
        # one bucket for all spellings: the fifth request is over the limit
        r = await client.get("/agents", headers={"Authorization": f"bEaReR\t{org.key}"})
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["x-ratelimit-limit"] == "4"


async def test_failed_authentication_is_throttled_per_address(
    services: Services, make_org: MakeOrg
) -> None:
    services.settings.auth_failures_per_minute = 20
    good = await make_org()
    async with _limited_app(services) as client:
        for _ in range(25):  # no key at all is no guess: not counted
            r = await client.get("/agents", headers={"Authorization": "Basic abc"})
            assert r.status_code == 401
        for n in range(20):
            r = await client.get("/agents", headers={"Authorization": f"Bearer flk_guess{n}"})
            assert r.status_code == 401, n
        # over the budget the key is not even looked at: a right guess looks the same
        for header in ({"Authorization": "Bearer flk_guess-more"}, good.headers, {}):
            r = await client.get("/agents", headers=header)
            assert r.status_code == 429, header
            assert 1 <= int(r.headers["retry-after"]) <= 60
            error = r.json()["error"]
            assert set(error) == {"code", "message", "param", "type"}
            assert (error["code"], error["type"]) == ("rate_limit_exceeded", "rate_limit_error")
            assert "failed authentication" in error["message"]
    async with _limited_app(services, peer="203.0.113.9") as there:  # its own budget
        assert (await there.get("/agents", headers=good.headers)).status_code == 200


async def test_limiter_memory_is_bounded() -> None:
    now = 1_000_000.0
    limiter = MemoryRateLimiter(lambda: now, max_keys=100)
    for n in range(5000):
        await limiter.hit(f"authfail:10.0.{n // 256}.{n % 256}", 20)
    assert len(limiter) <= 101
    # known keys keep their own counters; the newcomers share one (throttled together)
    assert (await limiter.hit("authfail:10.0.0.0", 20)).remaining == 18
    assert not (await limiter.hit("authfail:198.51.100.1", 20)).allowed
    now += 60  # a new window starts empty
    assert (await limiter.hit("authfail:198.51.100.1", 20)).remaining == 19
    assert len(limiter) == 1


async def test_distinct_invalid_headers_do_not_grow_the_table(services: Services) -> None:
    limiter = MemoryRateLimiter(max_keys=1000)
    services.limiter = limiter
    services.settings.auth_failures_per_minute = 10_000
    async with _limited_app(services) as client:
        for n in range(50):
            r = await client.get("/agents", headers={"Authorization": f"Bearer flk_x{n}"})
            assert r.status_code == 401
    assert len(limiter) == 1  # one failure counter for the address, nothing per header


async def test_redis_limiter_peek_does_not_count() -> None:
    url = os.environ.get("FLIREO_TEST_REDIS_URL")
    if not url:
        skip_or_fail("FLIREO_TEST_REDIS_URL is not set")
    redis = Redis.from_url(url)
    try:
        limiter, key = RedisRateLimiter(redis), f"authfail:test-{uuid.uuid4().hex}"
        assert (await limiter.peek(key, 2)).allowed
        assert (await limiter.peek(key, 2)).allowed
        await limiter.hit(key, 2)
        assert (await limiter.peek(key, 2)).allowed
        await limiter.hit(key, 2)
        assert not (await limiter.peek(key, 2)).allowed
    finally:
        await redis.aclose()
