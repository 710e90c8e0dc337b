"""``flireo test`` end to end: the real command in its own process calls an agent on a
real ``flireo serve`` over SIP/RTP (Piper speaks the caller, Whisper hears the agent),
the agent runs on the fake LLM, and a second fake OpenAI endpoint plays the LLM judge
and the caller persona. One suite passes (exit 0), one fails every expectation kind
(exit 1); the table and the JUnit XML say which and why."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.llm_script import Reply, last_user_text
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import serve
from tests.live.server import LiveServer

pytestmark = pytest.mark.slow

NUMBER = "+31850835037"
DESK = "+31201112222"


def agent_reply(body: dict[str, Any]) -> Reply | str:
    """The agent under test: answers by the caller's words (as the server's Whisper heard
    them), books with a tool, transfers, hangs up on a goodbye."""
    last = body["messages"][-1]
    said = last_user_text(body).lower()
    if last["role"] == "tool":
        if "book" in said:
            return "Your appointment is booked for Monday."
        return "I am sorry, I could not put you through."
    if "bye" in said:
        return Reply.call("endCall")
    if "book" in said:
        return Reply.call("book_appointment", {"day": "monday"})
    if "person" in said or "human" in said:
        return Reply.call("transferCall", {"destination": DESK})
    if "hours" in said or "open" in said:
        return "We are open from nine to five."
    return "Sure, I can help with that."


def helper_reply(body: dict[str, Any]) -> Reply | str:
    """The judge (JSON verdicts: passes when the transcript has the rubric's word) and
    the caller persona (asks for a person, then ends)."""
    system = body["messages"][0]["content"]
    if system.startswith("You judge"):
        prompt = body["messages"][-1]["content"]
        rubric, _, transcript = prompt.partition("Transcript:")
        word = rubric.split("mentions")[-1].strip(" .\n").lower()
        verdict = word in transcript.lower()
        reason = f"the agent {'did' if verdict else 'did not'} mention {word}"
        return json.dumps({"pass": verdict, "reason": reason})
    if sum(m["role"] == "assistant" for m in body["messages"]) == 0:
        return "Can I speak to a person, please?"
    return "[END]"


@pytest.fixture
def llms() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    agent = FakeOpenAI(api_key="sk-fake-agent", responder=agent_reply)
    helper = FakeOpenAI(api_key="sk-fake-judge", responder=helper_reply)
    with serve(agent.app()) as a, serve(helper.app()) as h:
        agent.url, helper.url = f"{a.url}/v1", f"{h.url}/v1"
        yield agent, helper


def suite(agent: FakeOpenAI, helper: FakeOpenAI, scenarios: list[dict[str, Any]]) -> str:
    endpoint = {"base_url": helper.url, "model": "judge-1", "api_key_env": "JUDGE_KEY"}
    return yaml.safe_dump(
        {
            "name": "front-desk",
            "judge": endpoint,
            "caller_llm": {**endpoint, "model": "caller-1"},
            "agent": {
                "phone_number": NUMBER,
                "byok": [{"provider": "openai", "api_key": agent.api_key}],
                "definition": {
                    "name": "Front desk",
                    "first_message": "Hello, this is Anna.",
                    "stt_config": {"provider": "whisper", "language": "en"},
                    "tts_config": {"provider": "piper"},
                    "llm_config": {
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "base_url": agent.url,
                        "messages": [{"role": "system", "content": "You are a receptionist."}],
                        "tools": [
                            {
                                "type": "function",
                                "name": "book_appointment",
                                "description": "Book an appointment",
                                "parameters": {
                                    "type": "object",
                                    "properties": {"day": {"type": "string"}},
                                },
                            },
                            {"type": "endCall"},
                            {"type": "transferCall", "destinations": [{"number": DESK}]},
                        ],
                    },
                },
            },
            "quiet_s": 0.8,
            "scenarios": scenarios,
        },
        sort_keys=False,
    )


def flireo_test(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flireo.cli", "test", *args],
        env={**env, "JUDGE_KEY": "sk-fake-judge", "COLUMNS": "240"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cases(junit: Path) -> dict[str, ET.Element]:
    root = ET.parse(junit).getroot()
    return {case.get("name", ""): case for case in root.iter("testcase")}


def test_a_passing_suite_against_a_running_server(
    llms: tuple[FakeOpenAI, FakeOpenAI], tmp_path: Path
) -> None:
    agent, helper = llms
    path = tmp_path / "pass.yaml"
    path.write_text(
        suite(
            agent,
            helper,
            [
                {
                    "name": "books and says goodbye",
                    "steps": [
                        {"say": "I would like to book an appointment."},
                        {"say": "Thank you, bye."},
                    ],
                    "expect": [
                        {"agent_says": "booked for Monday"},
                        {"agent_says": {"regex": r"\bmonday\b", "source": "heard"}},
                        {"agent_says": {"judge": "The agent mentions monday."}},
                        {
                            "tool_called": {
                                "name": "book_appointment",
                                "arguments": {"day": "monday"},
                            }
                        },
                        {"agent_hangs_up": {"within_s": 60}},
                        {"latency": {"max_ms": 30000}},
                    ],
                },
                {
                    "name": "persona asks for a person in pink noise",
                    "persona": {"prompt": "You want to talk to a human.", "max_turns": 2},
                    "noise": {"color": "pink", "snr_db": 25},
                    "expect": [{"transfer_attempted": {"destination": DESK}}],
                },
            ],
        )
    )
    server = LiveServer(tmp_path / "server", env={"FLIREO_ALLOW_PRIVATE_URLS": "1"})
    try:
        server.start()
        assert server.api_key
        junit = tmp_path / "out" / "junit.xml"
        run = flireo_test(
            str(path),
            "--server",
            f"127.0.0.1:{server.sip_port}",
            "--api-url",
            server.url,
            "--concurrency",
            "2",
            "--junit",
            str(junit),
            env={**server.env, "FLIREO_API_KEY": server.api_key},
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout + run.stderr + server.logs()[-3000:]
    out = run.stdout
    print(out)
    assert "2 of 2 scenarios passed" in out, out
    assert "✓ tool_called book_appointment" in out, out
    assert "✓ transfer_attempted +31201112222" in out, out
    assert "[2/2]" in out
    found = cases(junit)
    assert set(found) == {"books and says goodbye", "persona asks for a person in pink noise"}
    assert all(c.find("failure") is None and c.find("error") is None for c in found.values())
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "0", "0")
    # the judge got the call's transcript and the persona spoke its line on the call
    judged = [r for r in helper.requests if r["model"] == "judge-1"]
    assert judged
    assert "booked for Monday" in judged[0]["messages"][-1]["content"]
    # the persona heard the agent's answer and ended the call itself (its second turn)
    assert len([r for r in helper.requests if r["model"] == "caller-1"]) == 2
    persona = found["persona asks for a person in pink noise"].findtext("system-out") or ""
    assert "You: Can I speak to a person, please?" in persona, persona


def test_a_failing_suite_on_a_server_it_starts(
    llms: tuple[FakeOpenAI, FakeOpenAI], tmp_path: Path
) -> None:
    agent, helper = llms
    path = tmp_path / "fail.yaml"
    path.write_text(
        suite(
            agent,
            helper,
            [
                {
                    "name": "every expectation wrong",
                    "steps": [
                        {"say": "What are your opening hours?"},
                        {"backchannel": "Okay."},
                        {"dtmf": "1"},
                        {"interrupt": "Wait, stop.", "delay_s": 0.3},
                    ],
                    "expect": [
                        {"agent_says": "tuesday"},
                        {"agent_says": {"regex": r"\bclosed\b"}},
                        {"agent_says": {"judge": "The agent mentions weekends."}},
                        {"tool_called": {"name": "book_appointment"}},
                        {"transfer_attempted": True},
                        {"agent_hangs_up": {"within_s": 5}},
                        {"latency": {"max_ms": 1}},
                        {"agent_says": "nine to five"},
                    ],
                },
                {
                    "name": "a number the server does not have",
                    "call": "+31209999999",
                    "steps": [{"say": "Hello?"}],
                    "expect": [{"agent_says": "hello"}],
                },
            ],
        )
    )
    junit = tmp_path / "junit.xml"
    run = flireo_test(str(path), "--start-server", "--junit", str(junit), env=dict(_env()))
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    print(out)
    assert "0 of 2 scenarios passed" in out, out
    assert "the call failed: 404" in out, out
    for failed in (
        "✗ agent_says contains 'tuesday'",
        "✗ agent_says regex '\\\\bclosed\\\\b'",
        "✗ agent_says judge",
        "✗ tool_called book_appointment",
        "✗ transfer_attempted",
        "✗ agent_hangs_up within 5 s",
        "✗ latency first_audio_ms max ≤ 1 ms",
    ):
        assert failed in out, (failed, out)
    assert "✓ agent_says contains 'nine to five'" in out, out
    found = cases(junit)
    case = found["every expectation wrong"]
    unknown = found["a number the server does not have"].find("error")
    assert unknown is not None
    assert "the call failed: 404 Not Found: no such number on the server" in unknown.get(
        "message", ""
    )
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "1")
    failure = case.find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "not called (tool calls: " in message
    assert "no transfer attempted" in message
    assert "the caller hung up after" in message
    assert "did not mention weekends" in message
    assert "max over the bound" in message
    assert (failure.text or "").count("FAIL ") == 7
    assert "PASS agent_says contains 'nine to five'" in (failure.text or "")
    # the agent and its number were created on the started server through the API
    assert any(r["model"] == "gpt-4o-mini" for r in agent.requests)
    system_out = case.findtext("system-out") or ""
    assert "You: [DTMF 1]" in system_out
    assert "You: Okay." in system_out
    assert "You: Wait, stop." in system_out


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("FLIREO_")}
