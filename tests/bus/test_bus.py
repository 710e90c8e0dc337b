"""Control commands reach the live call, in process and across nodes over Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from flireo.api.ratelimit import RedisRateLimiter
from flireo.bus.base import Bus, ControlAck
from flireo.bus.memory import MemoryBus
from flireo.bus.redis import RedisBus
from tests.conftest import skip_or_fail


def redis_url() -> str:
    url = os.environ.get("FLIREO_TEST_REDIS_URL")
    if not url:
        skip_or_fail("FLIREO_TEST_REDIS_URL is not set")
        raise AssertionError("unreachable")
    return url


async def _exercise(sender: Bus, owner: Bus) -> None:
    call_id = f"call-{uuid.uuid4().hex}"
    seen: list[dict[str, Any]] = []

    async def handler(command: dict[str, Any]) -> ControlAck:
        seen.append(command)
        if command["type"] == "say":
            return ControlAck(ok=False, code="rate_limit_exceeded", retry_after=7)
        return ControlAck(ok=True, message="done")

    assert await sender.send_control(call_id, {"type": "end-call"}) is None
    registration = await owner.register_call(call_id, handler)
    ack = await sender.send_control(call_id, {"type": "end-call", "message": "bye"})
    assert ack == ControlAck(ok=True, message="done")
    refused = await sender.send_control(call_id, {"type": "say", "content": "x"})
    assert refused is not None
    assert (refused.code, refused.retry_after) == ("rate_limit_exceeded", 7)
    await registration.close()
    assert await sender.send_control(call_id, {"type": "end-call"}) is None
    assert seen == [{"type": "end-call", "message": "bye"}, {"type": "say", "content": "x"}]


async def test_memory_bus_routes_to_the_registered_call() -> None:
    bus = MemoryBus()
    await _exercise(bus, bus)


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    url = redis_url()
    api_node, media_node = RedisBus(url), RedisBus(url)
    try:
        await api_node.start()
        await media_node.start()
    except OSError as exc:
        skip_or_fail(f"Redis not reachable: {exc}")
    yield api_node, media_node
    await api_node.stop()
    await media_node.stop()


@pytest.mark.redis
async def test_redis_bus_routes_between_nodes(two_nodes: tuple[RedisBus, RedisBus]) -> None:
    api_node, media_node = two_nodes
    await _exercise(api_node, media_node)


@pytest.mark.redis
async def test_redis_rate_limit_is_shared_between_nodes() -> None:
    url = redis_url()
    a, b = Redis.from_url(url), Redis.from_url(url)
    key = f"test-{uuid.uuid4().hex}"
    try:
        first, second = RedisRateLimiter(a), RedisRateLimiter(b)
        results = [await (first if i % 2 else second).hit(key, 3) for i in range(5)]
    finally:
        await a.aclose()
        await b.aclose()
    assert [w.allowed for w in results] == [True, True, True, False, False]
    assert [w.remaining for w in results] == [2, 1, 0, 0, 0]
