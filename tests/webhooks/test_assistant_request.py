from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from flireo import __version__
from flireo.services.assistant_request import ask_assistant, decide
from flireo.store.tables import Agent, Call
from flireo.webhooks.sync import SyncReply
from tests.fakes.server import ServerThread, serve
from tests.fakes.webhook_receiver import WebhookReceiver


def reply(body: object, ok: bool = True) -> SyncReply:
    return SyncReply(ok, 200 if ok else 500, body, None if ok else "HTTP 500", 0.01)


def test_reply_shapes() -> None:
    assert decide(reply({})).overrides == {}
    assert decide(reply(None)).reject_message is None
    d = decide(
        reply(
            {
                "assistant": {
                    "firstMessage": "Hallo Jan!",
                    "llm_config": {"provider": "openai", "model": "gpt-4o", "voice": "ara"},
                    "analysisPlan": {"minMessagesThreshold": 2},
                    "somethingVapiSends": True,
                },
                "maxDurationSeconds": 300,
            }
        )
    )
    assert d.overrides["firstMessage"] == "Hallo Jan!"
    assert d.overrides["llm_config"]["model"] == "gpt-4o"
    assert d.overrides["analysisPlan"] == {"minMessagesThreshold": 2}
    assert d.overrides["maxDurationSeconds"] == 300
    rejected = decide(reply({"error": "Sorry, we are closed right now."}))
    assert rejected.reject_message == "Sorry, we are closed right now."
    assert decide(reply({"assistant": {"llm_config": {"provider": "nope"}}})).fallback_reason
    assert decide(reply("text")).fallback_reason
    assert decide(reply({}, ok=False)).fallback_reason == "HTTP 500"


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ServerThread]]:
    r = WebhookReceiver()
    with serve(r.app()) as srv:
        yield r, srv


async def test_assistant_request_round_trip(receiver: tuple[WebhookReceiver, ServerThread]) -> None:
    r, srv = receiver
    r.reply = {"assistant": {"firstMessage": "Hi Jan"}}
    agent = Agent(
        id="a1",
        org_id="o",
        name="x",
        webhook_url=srv.url + "/hook",
        webhook_events=["assistant-request"],
    )
    call = Call(
        id="call-_+31612345678_x",
        org_id="o",
        direction="inbound",
        status="connecting",
        caller_phone="+31612345678",
        assistant_phone="+31850835037",
    )
    async with httpx.AsyncClient() as http:
        decision = await ask_assistant(
            http,
            call,
            agent,
            number_name="Main",
            secret="s3cret",
            now=datetime.now(UTC),
            allow_private=True,
        )
        assert decision.overrides == {"firstMessage": "Hi Jan"}
        message = r.requests[0].json["message"]
        assert message["type"] == "assistant-request"
        assert message["call"]["status"] == "ringing"
        assert message["phoneNumber"] == {"number": "+31850835037", "name": "Main"}
        assert message["customer"] == {"number": "+31612345678"}
        assert "x-webhook-signature" in r.requests[0].headers
        assert r.requests[0].headers["user-agent"] == f"Flireo/{__version__}"
        agent.webhook_events = ["end-of-call-report"]  # not selected: no request at all
        assert (
            await ask_assistant(
                http,
                call,
                agent,
                number_name=None,
                secret=None,
                now=datetime.now(UTC),
                allow_private=True,
            )
        ).overrides == {}
    assert len(r.requests) == 1
