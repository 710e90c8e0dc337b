"""Talk to an agent from the console in real Chromium: its fake microphone plays a
Piper-made caller WAV, the call goes over WebRTC to a real ``flireo serve`` (Whisper,
Piper, the fake LLM), the page's live transcript shows the agent's first message
and its answer, and the stored call ends with both sides transcribed."""

from __future__ import annotations

import asyncio
import re
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flireo.media.resample import resample_all
from tests.console.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    Api,
    screenshot,
    sign_in,
)
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.live.server import LiveServer
from tests.speech import speak, words

pytestmark = pytest.mark.slow

GREETING = "Hello, this is Anna."
ANSWER = "We are open from nine to five."


def caller_wav(path: Path) -> Path:
    """48 kHz mono WAV: silence while the call connects (~2.5 s from getUserMedia, when
    Chromium starts playing the file) and the agent greets, then the question."""
    question = asyncio.run(speak("What are your opening hours?"))
    pcm16k = bytes(16_000 * 2 * 8) + question + bytes(16_000 * 2 * 15)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(resample_all(pcm16k, 16_000, 48_000))
    return path


@pytest.fixture(scope="module")
def talking_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.console.conftest import skip_or_fail  # the same rule as the console tests

    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is not installed")
    wav = caller_wav(tmp_path_factory.mktemp("webcall") / "caller.wav")
    from playwright.sync_api import sync_playwright

    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        # host candidates as addresses, not mDNS names (aiortc resolves no .local)
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def test_talk_to_this_agent_from_the_agent_page(
    talking_browser: Any, server: LiveServer, api: Api, fake_llm: FakeOpenAI
) -> None:
    api("POST", "/byok", json={"provider": "openai", "api_key": fake_llm.api_key})
    agent = api(
        "POST",
        "/agents",
        json={
            "name": "Web desk",
            "first_message": GREETING,
            "stt_config": {"provider": "whisper", "language": "en"},
            "llm_config": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake_llm.url,
                "messages": [{"role": "system", "content": "You are a receptionist."}],
            },
            "tts_config": {"provider": "piper"},
        },
    )["agent"]
    fake_llm.enqueue(Reply.say(ANSWER))
    context = talking_browser.new_context(viewport=DESKTOP, base_url=server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15_000)
    try:
        sign_in(page, api.key)
        page.goto(f"/#/agents/{agent['id']}")
        section = page.get_by_role("region", name="Talk to this agent")
        section.get_by_role("button", name="Talk to this agent").click()
        section.get_by_role("status").get_by_text("Connected").wait_for(timeout=20_000)
        lines = section.get_by_role("list", name="Live transcript")
        try:
            lines.get_by_text(GREETING).wait_for(timeout=30_000)
            lines.get_by_text(ANSWER).wait_for(timeout=45_000)
        except Exception as exc:
            last = api("GET", "/calls")["calls"][:1]
            said = api("GET", f"/calls/{last[0]['id']}")["messages"] if last else None
            raise AssertionError(f"page: {section.inner_text()!r}; the call said: {said}") from exc
        user = lines.locator("[data-role=user]").first.inner_text()
        assert {"opening", "hours"} <= set(words(user))
        call_id = section.evaluate("s => s.dataset.callId")
        screenshot(page, "web-call")
        section.get_by_role("button", name="Hang up").click()
        section.get_by_role("status").get_by_text(re.compile("Call ended")).wait_for()
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"

    deadline = time.monotonic() + 20
    while (call := api("GET", f"/calls/{call_id}"))["status"] != "ended":
        assert time.monotonic() < deadline, call
        time.sleep(0.2)
    assert (call["type"], call["ended_reason"]) == ("webCall", "manually-ended")
    said = [(m["role"], m.get("content")) for m in call["messages"] if m.get("content")]
    assert ("assistant", GREETING) in said
    assert ("assistant", ANSWER) in said
    assert any(role == "user" and "hours" in words(text) for role, text in said)
