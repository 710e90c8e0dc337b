"""A real phone call in the console: sipp calls a number of a real ``flireo serve``
(agent on the fake LLM, local Whisper and Piper); the Calls page shows it appear
and end live (SSE over fetch), and the call page plays its stereo recording,
draws the latency waterfall and redelivers a webhook."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.calls.phone import NUMBER, ulaw_wav
from tests.calls.scenarios import caller_streams
from tests.console.conftest import Api, screenshot, sign_in
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import serve
from tests.live.server import LiveServer
from tests.speech import speak
from tests.telephony.sipp import SIPP, free_port

pytestmark = [pytest.mark.sipp, pytest.mark.slow]


@pytest.fixture(scope="module")
def hooks() -> Iterator[list[bytes]]:
    """A customer's webhook receiver: every delivery is answered 200."""
    received: list[bytes] = []

    async def hook(request: Request) -> Response:
        received.append(await request.body())
        return Response("ok")

    with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as srv:
        received.append(srv.url.encode())  # the first item is the receiver's base URL
        yield received


@pytest.fixture(scope="module")
def front_desk(api: Api, fake_llm: FakeOpenAI, hooks: list[bytes]) -> str:
    """An agent on the fake LLM answering NUMBER; returns its id."""
    api("POST", "/byok", json={"provider": "openai", "api_key": fake_llm.api_key})
    agent = api(
        "POST",
        "/agents",
        json={
            "name": "Front desk",
            "first_message": "Hello, this is Anna.",
            "stt_config": {"provider": "whisper", "language": "en"},
            "llm_config": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake_llm.url,
                "messages": [{"role": "system", "content": "You are a receptionist."}],
            },
            "tts_config": {"provider": "piper"},
            "webhook_url": f"{hooks[0].decode()}/hook",
            "webhook_events": ["status-update", "end-of-call-report"],
            "recording_enabled": True,
        },
    )["agent"]
    trunk = api("POST", "/sip-trunks", json={"name": "carrier", "host": "127.0.0.1"})
    api(
        "POST",
        "/numbers",
        json={
            "phone_number": NUMBER,
            "name": "Main",
            "agent_id": agent["id"],
            "transfer_trunk_id": trunk["sip_trunk"]["id"],
        },
    )
    return str(agent["id"])


def place_call(server: LiveServer, workdir: Path) -> subprocess.Popen[bytes]:
    """sipp calls NUMBER, asks a question after 5.5 s (the greeting has played), stays
    10 s more (time to answer on a busy machine), hangs up."""
    # (Playwright's sync API runs its own event loop on this thread)
    with ThreadPoolExecutor(1) as pool:
        pcm = pool.submit(asyncio.run, speak("What are your opening hours?")).result()
    wav = ulaw_wav(pcm, workdir / "caller.wav")
    scenario = caller_streams(workdir / "caller.xml", wav, delay_ms=5500, hold_ms=10000)
    log = (workdir / "sipp.log").open("wb")
    return subprocess.Popen(
        [
            SIPP,
            f"127.0.0.1:{server.sip_port}",
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-t",
            "u1",
            "-s",
            NUMBER,
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "40s",
            "-timeout_error",
            "-nr",
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_a_sipp_call_appears_and_ends_live_then_plays_with_its_waterfall(
    page: Any,
    api: Api,
    server: LiveServer,
    fake_llm: FakeOpenAI,
    front_desk: str,
    hooks: list[bytes],
    tmp_path: Path,
) -> None:
    fake_llm.enqueue(Reply.say("We are open from nine to five."))
    sign_in(page, api.key)
    page.get_by_role("link", name="Calls").click()
    page.locator("#calls-live[data-state='live']").wait_for()
    assert page.get_by_text("No calls match these filters.").is_visible()

    sipp = place_call(server, tmp_path)
    try:
        # the row appears while the call is up, without a reload, and then ends
        live_row = page.locator(
            "#calls-table tbody tr",
            has=page.locator("[data-status='in-progress'], [data-status='ringing']"),
        )
        live_row.first.wait_for(timeout=30_000)
        screenshot(page, "calls-live-desktop")
        page.locator("#calls-table tbody tr [data-status='ended']").wait_for(timeout=40_000)
        assert sipp.wait(timeout=30) == 0, (tmp_path / "sipp.log").read_text(errors="replace")
    finally:
        if sipp.poll() is None:
            sipp.kill()
    calls = api("GET", "/calls")["calls"]
    assert [c["status"] for c in calls] == ["ended"]
    call_id = calls[0]["id"]
    assert page.locator("#calls-table tbody tr").count() == 1
    screenshot(page, "calls-desktop")
    # filters go to the server (and into the URL): no failed calls, one ended one
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_text("No calls match these filters.").wait_for()
    assert page.url.endswith("#/calls?status=failed")
    page.get_by_label("Status").select_option("ended")
    page.get_by_role("button", name="Apply filters").click()
    page.locator(f"#calls-table tr[data-id='{call_id}']").wait_for()
    assert page.locator("#view .pager-info").inner_text() == "1–1 of 1"

    page.locator(f"#calls-table tr[data-id='{call_id}'] a").click()
    page.get_by_role("heading", name="Call from +31612345678").wait_for()
    transcript = page.locator("#transcript")
    transcript.get_by_text("Hello, this is Anna.").wait_for()
    transcript.get_by_text("We are open from nine to five.").wait_for()
    # transcript lines carry their time on the recording
    assert re.fullmatch(r"\d+:\d\d\.\d", transcript.locator(".time").first.inner_text())

    # the stereo recording plays, and seeking moves it
    player = page.locator("audio#call-recording")
    player.wait_for(state="attached")
    src = player.get_attribute("src") or ""
    assert src, "no recording link on the call page"
    assert api.key not in src
    page.wait_for_function(
        "() => document.getElementById('call-recording').readyState >= 1", timeout=20_000
    )
    duration = player.evaluate("a => a.duration")
    assert duration > 5, duration
    player.evaluate("a => a.play()")
    page.wait_for_function(
        "() => document.getElementById('call-recording').currentTime > 0.5", timeout=15_000
    )
    player.evaluate("a => { a.pause(); a.currentTime = 4; }")
    page.wait_for_function(
        "() => Math.abs(document.getElementById('call-recording').currentTime - 4) < 0.5"
    )

    # the waterfall: one row per turn with its latency parts, over the recording
    page.get_by_text(re.compile(r"^Latency waterfall")).click()
    waterfall = page.locator("#waterfall svg.waterfall")
    waterfall.wait_for()
    turns = api("GET", f"/calls/{call_id}")["metrics"]["turns"]
    assert waterfall.locator("g.wf-row").count() == len(turns) >= 2
    parts = set(
        waterfall.locator("[data-part]").evaluate_all("els => els.map(e => e.dataset.part)")
    )
    assert {"STT", "LLM first token", "TTS first byte", "First audio"} <= parts
    # a turn's marker seeks the player to it
    waterfall.locator(".wf-marker").nth(1).click()
    page.wait_for_function(
        "() => document.getElementById('call-recording').currentTime > 1", timeout=5_000
    )
    screenshot(page, "call-detail-desktop")

    # webhook deliveries, and a redelivery
    webhooks = page.locator("#webhooks")
    webhooks.locator("[data-status='delivered']").first.wait_for(timeout=20_000)
    before = len(hooks)
    webhooks.get_by_role("button", name=re.compile("^Redeliver end-of-call-report")).click()
    page.get_by_text(re.compile("Redelivery of end-of-call-report queued")).wait_for()
    for _ in range(100):
        if len(hooks) > before:
            break
        page.wait_for_timeout(100)
    assert len(hooks) > before, "the redelivered webhook never arrived"
    assert b"end-of-call-report" in hooks[-1]

    # the usage chart has today's minutes
    page.get_by_role("link", name="Usage").click()
    today = page.locator("svg.chart.minutes rect.bar").last
    today.wait_for()
    assert float(today.get_attribute("height") or 0) > 0
    screenshot(page, "usage-after-call-desktop")
