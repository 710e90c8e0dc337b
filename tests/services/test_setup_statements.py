"""How many SQL statements one call's set-up and teardown sends, on SQLite and PostgreSQL.

sipp calls a number over real SIP (loopback) and hangs up right after the
answer; the gateway admits the call, prepares it, answers, runs the session,
and ends the record once. Every statement the store is sent from the INVITE to
the end of the record is counted (SQLAlchemy ``before_cursor_execute``): a
count, not a time, so it holds on a loaded machine. The bound is what the
set-up needs (see bench/call_setup_cpu.py for the CPU): before the cut it sent
29 statements on SQLite and 24 on PostgreSQL for this call (a read of the max
``seq`` and of the number's name per webhook event, the call re-read and
flushed through the ORM at each status change, the usage log checked before it
was written, the vendor key and its secret read apart).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from flireo.services.container import Services
from flireo.store.tables import Call, Organization, UsageLog, WebhookEvent
from flireo.telephony.sip.ua import SipEndpoint
from tests.api.conftest import Org
from tests.calls.phone import NUMBER, agent_with_number, gateway
from tests.calls.scenarios import caller_hangs_up
from tests.fakes.openai_chat import FakeOpenAI
from tests.telephony.conftest import sipp  # noqa: F401 - pytest fixture
from tests.telephony.sipp import Sipp, free_port

pytestmark = pytest.mark.sipp

#: statements of one answered silent call with status-update and end-of-call-report
#: webhooks: admission read (number, then the vendor keys in the same session), open
#: (insert + ringing event), in-progress (update + event), finish (read, usage, debit,
#: two events, one update); SQLite also counts the BEGIN of each of the four transactions
BOUND = {"sqlite": 16, "postgres": 12}
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def kind(sql: str) -> str:
    verb = sql.split(None, 1)[0].upper()
    table = _TABLE.search(sql)
    return f"{verb} {table.group(1)}" if table and verb != "BEGIN" else verb


async def no_live_call(endpoint_owner: Any, timeout_s: float = 30.0) -> None:
    """Until the gateway holds no call (its record is finished), without a query."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if not endpoint_owner.legs and not endpoint_owner._tasks:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the call did not end")


async def test_one_call_set_up_and_teardown_sends_few_statements(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    sipp: Sipp,  # noqa: F811 - the fixture imported above
    backend: str,
    tmp_path: Path,
) -> None:
    await agent_with_number(api, fake_openai, first_message=None)
    async with services.db.read() as s:
        balance_before = await s.scalar(
            select(Organization.minutes_balance).where(Organization.id == org.id)
        )
    sent: Counter[str] = Counter()

    def count(*args: Any) -> None:
        sent[kind(args[2])] += 1

    scenario = caller_hangs_up(tmp_path / "hangs_up.xml", hold_ms=0)
    async with gateway(services) as gw:
        assert isinstance(gw.endpoint, SipEndpoint)
        event.listen(services.db.engine.sync_engine, "before_cursor_execute", count)
        try:
            run = await sipp.start(
                str(scenario),
                remote=("127.0.0.1", gw.endpoint.port),
                service=NUMBER,
                extra=["-mp", str(free_port())],
            )
            assert await run.wait(30) == 0, run.explain()
            await no_live_call(gw)
        finally:
            event.remove(services.db.engine.sync_engine, "before_cursor_execute", count)

    # the call went through the whole path and ended once, as before the cut
    async with services.db.read() as s:
        calls = list((await s.execute(select(Call))).scalars())
        assert len(calls) == 1
        call = calls[0]
        events = list(
            (
                await s.execute(
                    select(WebhookEvent)
                    .where(WebhookEvent.call_id == call.id)
                    .order_by(WebhookEvent.seq)
                )
            ).scalars()
        )
        usage = list((await s.execute(select(UsageLog))).scalars())
        balance_after = await s.scalar(
            select(Organization.minutes_balance).where(Organization.id == org.id)
        )
    assert (call.status, call.ended_reason) == ("ended", "customer-ended-call")
    assert call.started_at is not None
    assert [(e.seq, e.event_type) for e in events] == [
        (1, "status-update"),
        (2, "status-update"),
        (3, "status-update"),
        (4, "end-of-call-report"),
    ]
    assert [e.payload["message"]["status"] for e in events[:3] if e.payload] == [
        "ringing",
        "in-progress",
        "ended",
    ]
    report = events[3].payload
    assert report is not None
    assert report["message"]["phoneNumber"] == {"number": NUMBER, "name": "Main"}
    assert report["message"]["endedReason"] == "customer-ended-call"
    assert len(usage) == 1
    assert balance_before is not None
    assert balance_after == balance_before - usage[0].minutes_used

    total = sum(sent.values())
    assert total <= BOUND[backend], f"{total} statements: {dict(sorted(sent.items()))}"
    # nothing the set-up already holds is read again
    assert sent["SELECT numbers"] <= 1, dict(sent)
    assert sent["SELECT webhook_events"] == 0, dict(sent)
    assert sent["SELECT usage_logs"] == 0, dict(sent)
