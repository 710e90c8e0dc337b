from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from flireo.services.container import Services
from flireo.store.tables import Call, UsageLog
from tests.api.conftest import Org


async def _log(
    services: Services, org: Org, call_id: str, seconds: int, at: datetime, **kw: object
) -> None:
    minutes = -(-seconds // 60)
    async with services.db.transaction() as s:
        s.add(
            UsageLog(
                org_id=org.id,
                call_id=call_id,
                duration_seconds=seconds,
                minutes_used=minutes,
                cost=Decimal("0.07") * minutes,
                created_at=at,
                **kw,
            )
        )


async def test_usage_logs_summary_and_filters(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    now = datetime.now(UTC)
    await _log(
        services, org, "c1", 84, now, agent_id="a1", tts_characters=120, llm_prompt_tokens=50
    )
    await _log(services, org, "c2", 30, now - timedelta(days=1), agent_id="a2", stt_seconds=12.5)
    await _log(services, org, "c3", 121, now - timedelta(days=40), agent_id="a1")
    body = (await api.get("/usage")).json()
    assert body["pagination"] == {"total": 3, "limit": 100, "offset": 0}
    assert [log["call_id"] for log in body["logs"]] == ["c1", "c2", "c3"]
    assert body["logs"][0]["minutes_used"] == 2
    assert body["logs"][0]["cost"] == 0.14
    summary = body["summary"]
    assert summary["total_minutes"] == 2 + 1 + 3
    assert summary["total_seconds"] == 84 + 30 + 121
    assert summary["total_calls"] == 3
    assert summary["total_cost"] == 0.42
    assert summary["vendor_usage"]["tts_characters"] == 120
    assert summary["vendor_usage"]["stt_seconds"] == 12.5
    by_agent = (await api.get("/usage", params={"agent_id": "a1"})).json()
    assert by_agent["summary"]["total_calls"] == 2
    recent = (
        await api.get("/usage", params={"start_date": (now - timedelta(days=2)).isoformat()})
    ).json()
    assert recent["summary"]["total_minutes"] == 3
    paged = (await api.get("/usage", params={"limit": 1, "offset": 2})).json()
    assert [log["call_id"] for log in paged["logs"]] == ["c3"]
    assert paged["summary"]["total_calls"] == 3  # the summary covers the filter, not the page
    reversed_range = await api.get(
        "/usage", params={"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}
    )
    assert reversed_range.status_code == 400


async def test_account_shows_balance_and_live_counts(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    await api.post("/agents", json={"name": "a"})
    await api.post("/agents", json={"name": "b", "is_active": False})
    await api.post("/numbers", json={"phone_number": "+31850835037"})
    async with services.db.transaction() as s:
        s.add(Call(id="live", org_id=org.id, direction="inbound", status="in-progress"))
        s.add(Call(id="old", org_id=org.id, direction="inbound", status="ended"))
    now = datetime.now(UTC)
    await _log(services, org, "old", 125, now)
    await _log(services, org, "older", 60, now - timedelta(days=45))
    account = (await api.get("/account")).json()
    assert account["id"] == org.id
    assert account["name"] == account["company_name"] == "Acme Corp"
    assert account["minutes_balance"] == 100
    assert account["monthly_usage_minutes"] == 3
    assert account["active_agents"] == 1
    assert account["active_numbers"] == 1
    assert account["active_calls"] == 1
    assert account["currency"] == "EUR"
