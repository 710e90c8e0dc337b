"""The per-call control limit comes from ``FLIREO_CONTROL_RATE_LIMIT_PER_MINUTE``
and never refuses ``end-call`` (issue 14 item 6): a live call run by the
CallRunner, driven through the API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from flireo.clock import SystemClock
from flireo.engine.memory_transport import MemoryTransport
from flireo.services.container import Services
from tests.api.conftest import Org
from tests.fakes.openai_chat import FakeOpenAI
from tests.services.test_call_runner import (
    add_openai_key,
    make_agent,
    record,
    runner,
    stored_call,
)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_setting_sets_the_limit_and_end_call_always_passes(
    services: Services, org: Org, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    services.settings.control_rate_limit_per_minute = 2
    await add_openai_key(api, fake_openai)
    agent_id = await make_agent(api, fake_openai, first_message=None)
    call_id = await stored_call(services, org, agent_id)
    transport = MemoryTransport(SystemClock())
    task = asyncio.create_task(runner(services).run(call_id, transport))
    inject = {"type": "inject-context", "content": "The caller is a premium customer."}
    r = await api.post(f"/calls/{call_id}/control", json=inject)
    for _ in range(200):  # 400 until the call is in progress
        if r.status_code == 200:
            break
        assert r.status_code == 400, r.text
        await asyncio.sleep(0.05)
        r = await api.post(f"/calls/{call_id}/control", json=inject)
    assert r.status_code == 200, r.text
    assert (await api.post(f"/calls/{call_id}/control", json=inject)).status_code == 200
    limited = await api.post(f"/calls/{call_id}/control", json=inject)
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert "limit 2 per minute" in limited.json()["error"]["message"]
    assert 1 <= int(limited.headers["retry-after"]) <= 60

    ended = await api.post(
        f"/calls/{call_id}/control", json={"type": "end-call", "message": "Goodbye."}
    )
    assert ended.status_code == 200, ended.text
    outcome = await asyncio.wait_for(task, 30)
    assert outcome is not None
    assert outcome.ended_reason == "manually-ended"
    assert (await record(services, call_id)).ended_reason == "manually-ended"
