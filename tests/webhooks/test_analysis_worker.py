"""Finished call → analysis job → the report goes out with the analysis."""

from __future__ import annotations

import json

from sqlalchemy import select

from flireo.clock import ManualClock
from flireo.services.analysis_jobs import AnalysisWorker
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.container import Services
from flireo.store.tables import AnalysisJob, Call
from tests.api.conftest import Org
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.fakes.server import ServerThread
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.webhooks.test_outbox import MESSAGES, clock, deliver_all, deliverer, make_call, receiver

__all__ = ["clock", "receiver"]  # fixtures used here

PLAN = {
    "structuredDataPlan": {
        "enabled": True,
        "schema": {
            "type": "object",
            "properties": {"open": {"type": "boolean"}},
            "required": ["open"],
        },
    }
}


def worker(services: Services, clock: ManualClock) -> AnalysisWorker:
    return AnalysisWorker(
        services.db, services.vault, services.settings, clock, services.http, node_id="test"
    )


async def test_report_carries_the_analysis(
    services: Services,
    org: Org,
    receiver: tuple[WebhookReceiver, ServerThread],
    clock: ManualClock,
    fake_openai: FakeOpenAI,
) -> None:
    r, srv = receiver
    services.settings.openai_api_key = fake_openai.api_key
    services.settings.openai_base_url = fake_openai.url
    fake_openai.enqueue(
        Reply.say("Caller asked about opening hours."), Reply.say(json.dumps({"open": True}))
    )
    call_id = await make_call(services, org, srv.url + "/hook", analysis_plan=PLAN)
    life = CallLifecycle(services.db, services.settings, clock)
    await life.transition(call_id, "in-progress")
    await life.finish(
        call_id,
        CallCompletion(status="ended", ended_reason="customer-ended-call", messages=MESSAGES),
    )
    assert await worker(services, clock).run_once() == 1
    await deliver_all(deliverer(services, clock), clock)
    report = r.delivered()[-1].json["message"]
    assert report["type"] == "end-of-call-report"
    assert report["summary"] == "Caller asked about opening hours."
    assert report["analysis"]["open"] is True
    assert report["analysis"]["structuredData"] == {"open": True}
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
    assert call is not None
    assert (call.analysis_status, call.analysis_result["open"]) == ("done", True)  # type: ignore[index]


async def test_llm_failure_is_recorded_and_the_report_still_goes(
    services: Services,
    org: Org,
    receiver: tuple[WebhookReceiver, ServerThread],
    clock: ManualClock,
    fake_openai: FakeOpenAI,
) -> None:
    r, srv = receiver
    services.settings.openai_api_key = "sk-wrong"  # the fake answers 401
    services.settings.openai_base_url = fake_openai.url
    call_id = await make_call(services, org, srv.url + "/hook", analysis_plan=PLAN)
    life = CallLifecycle(services.db, services.settings, clock)
    await life.transition(call_id, "in-progress")
    await life.finish(
        call_id,
        CallCompletion(status="ended", ended_reason="customer-ended-call", messages=MESSAGES),
    )
    await worker(services, clock).run_once()
    await deliver_all(deliverer(services, clock), clock)
    report = r.delivered()[-1].json["message"]
    assert report["type"] == "end-of-call-report"
    assert "analysis" not in report
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
        job = (await s.execute(select(AnalysisJob))).scalar_one()
    assert call is not None
    assert call.analysis_status == "failed"
    assert "401" in (call.analysis_error or "")
    assert job.status == "failed"
