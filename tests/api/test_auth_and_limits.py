from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from flireo.api.app import create_app
from flireo.services.container import Services
from flireo.services.organizations import create_api_key, revoke_api_key
from tests.api.conftest import Org

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
