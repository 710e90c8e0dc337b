from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flireo import __version__
from flireo.services.builder import build_services
from flireo.settings import Settings
from flireo.webhooks.signing import verify_flireo_signature
from flireo.webhooks.sync import post_sync_webhook
from tests.api.conftest import RecordingDialer
from tests.fakes.server import ServerThread, serve

calls: list[Request] = []


def app() -> Starlette:
    async def fast(request: Request) -> JSONResponse:
        body = await request.body()
        ok = verify_flireo_signature(
            "s3cret",
            request.headers["x-webhook-timestamp"],
            body,
            request.headers["x-webhook-signature"],
            now=time.time(),
        )
        calls.append(request)
        return JSONResponse({"assistant": {"firstMessage": "Hi Jan"}, "signed": ok})

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(2)
        return JSONResponse({})

    async def echo(request: Request) -> JSONResponse:
        calls.append(request)
        return JSONResponse({})

    async def broken(request: Request) -> JSONResponse:
        return JSONResponse({"error": "down"}, status_code=500)

    return Starlette(
        routes=[
            Route("/fast", fast, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
            Route("/broken", broken, methods=["POST"]),
            Route("/echo", echo, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with serve(app()) as srv:
        yield srv


async def test_signed_reply_is_returned(server: ServerThread) -> None:
    async with httpx.AsyncClient() as http:
        reply = await post_sync_webhook(
            http,
            url=server.url + "/fast",
            event_type="assistant-request",
            payload={"message": {"type": "assistant-request"}},
            secret="s3cret",
            deadline_seconds=5,
            allow_private=True,
        )
    assert reply.ok
    assert reply.body == {"assistant": {"firstMessage": "Hi Jan"}, "signed": True}
    assert calls[-1].headers["user-agent"] == f"Flireo/{__version__}"


async def test_the_shared_client_says_flireo_too(server: ServerThread, tmp_path: Path) -> None:
    """Vendor calls, analysis and e-mail go through ``Services.http``."""
    settings = Settings(data_dir=tmp_path, allow_private_urls=True)
    svc = build_services(settings, dialer=RecordingDialer())
    try:
        r = await svc.http.post(server.url + "/echo", json={})
        assert r.status_code == 200
        assert calls[-1].headers["user-agent"] == f"Flireo/{__version__}"
    finally:
        await svc.http.aclose()
        await svc.db.dispose()


async def test_timeout_error_and_refusal_are_reported_not_raised(server: ServerThread) -> None:
    async with httpx.AsyncClient() as http:
        slow = await post_sync_webhook(
            http,
            url=server.url + "/slow",
            event_type="tool-calls",
            payload={},
            secret=None,
            deadline_seconds=0.3,
            allow_private=True,
        )
        broken = await post_sync_webhook(
            http,
            url=server.url + "/broken",
            event_type="tool-calls",
            payload={},
            secret=None,
            deadline_seconds=5,
            allow_private=True,
        )
        refused = await post_sync_webhook(
            http,
            url=server.url + "/fast",
            event_type="tool-calls",
            payload={},
            secret=None,
            deadline_seconds=5,
            allow_private=False,
        )
    assert (slow.ok, slow.error) == (False, "no answer within 0.3 s")
    assert slow.seconds < 1.5
    assert (broken.ok, broken.status, broken.body) == (False, 500, {"error": "down"})
    assert not refused.ok
    assert refused.error is not None
    assert refused.error.startswith("refused")
