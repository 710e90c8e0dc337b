"""Webhooks survive a receiver outage and two SIGKILLs of the server."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

import httpx
from sqlalchemy import select

from flireo.clock import SystemClock
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.tables import Call, WebhookEvent
from tests.fakes.server import serve
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.live.server import LiveServer

CALLS = 10


def database_url(server: LiveServer) -> str:
    return server.env.get("FLIREO_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{Path(server.env['FLIREO_DATA_DIR']) / 'flireo.db'}"
    )


async def seed_finished_calls(url: str, org_id: str, agent_id: str) -> list[str]:
    """Calls that ended while the server was down: their webhooks wait in the outbox."""
    db = Database(url)
    life = CallLifecycle(db, Settings(), SystemClock())
    ids = []
    try:
        for i in range(CALLS):
            call_id = f"call-_+3161234{i:04d}_outage"
            async with db.transaction() as s:
                s.add(
                    Call(
                        id=call_id,
                        org_id=org_id,
                        agent_id=agent_id,
                        direction="inbound",
                        status="connecting",
                        caller_phone=f"+3161234{i:04d}",
                        assistant_phone="+31850835037",
                        owner_node="elsewhere",
                    )
                )
            await life.transition(call_id, "in-progress")
            await life.finish(
                call_id, CallCompletion(status="ended", ended_reason="customer-ended-call")
            )
            ids.append(call_id)
        async with db.read() as s:
            count = len((await s.execute(select(WebhookEvent))).scalars().all())
        assert count == CALLS * 3
    finally:
        await db.dispose()
    return ids


def test_outage_and_two_sigkills_lose_no_webhook(live_server: LiveServer) -> None:
    receiver = WebhookReceiver(default_status=503)
    with serve(receiver.app()) as hook:
        h = live_server.headers
        agent = httpx.post(
            live_server.api + "/agents",
            headers=h,
            json={
                "name": "a",
                "webhook_url": hook.url + "/hook",
                "webhook_secret": "s3cret-s3cret",
            },
        ).json()["agent"]
        org_id = httpx.get(live_server.api + "/account", headers=h).json()["id"]
        live_server.stop()
        asyncio.run(seed_finished_calls(database_url(live_server), org_id, agent["id"]))

        live_server.env["FLIREO_WEBHOOK_RETRY_SCALE"] = "0.001"  # 5 s → 5 ms ... 10 h → 36 s
        live_server.start()
        time.sleep(1.5)
        assert receiver.requests, "no delivery attempt during the outage"
        live_server.kill()
        live_server.start()
        time.sleep(1.5)
        live_server.kill()
        live_server.start()
        receiver.default_status = 200  # the outage ends
        deadline = time.monotonic() + 90
        while len({r.webhook_id for r in receiver.delivered()}) < CALLS * 3:
            assert time.monotonic() < deadline, f"only {len(receiver.delivered())} delivered"
            time.sleep(0.2)
        time.sleep(1.0)  # anything still in flight would show up as a duplicate now

    failed = [r for r in receiver.requests if r.status == 503]
    assert len(failed) >= CALLS  # the outage was real
    delivered = receiver.delivered()
    ids = [r.webhook_id for r in delivered]
    assert len(set(ids)) == CALLS * 3
    duplicates = len(ids) - len(set(ids))
    # at-least-once: a duplicate is only ever a redelivery of the same webhook-id
    assert duplicates <= 2, f"{duplicates} duplicate deliveries"
    first_seen: dict[str, list[str]] = defaultdict(list)
    for r in delivered:
        message = r.json["message"]
        label = f"{message['type']}:{message['call']['status']}"
        if label not in first_seen[message["call"]["id"]]:
            first_seen[message["call"]["id"]].append(label)
    for call_id, order in first_seen.items():
        assert order == [
            "status-update:in-progress",
            "status-update:ended",
            "end-of-call-report:ended",
        ], call_id
