"""Voicemail detection on an outbound call's first utterance (guides.md §14), with the
callee's greeting spoken by Piper and heard by Whisper."""

from __future__ import annotations

import httpx
import pytest

from flireo.engine import ended_reasons
from flireo.engine.config import CallInfo, VoicemailDetection
from flireo.engine.voicemail import Verdict, VoicemailGate, voicemail_phrase
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import start_call
from tests.fakes.openai_chat import FakeOpenAI
from tests.speech import speak, words

MAILBOX = "You have reached the voicemail of John."
FIRST = "Hello, this is Anna from the bakery."
LEFT = "Hi John, please call Anna back."
OUTBOUND = CallInfo(call_id="call-out-1", direction="outbound", customer_number="+31612345678")


@pytest.mark.parametrize("message", [LEFT, None], ids=["leaves-message", "hangs-up-silently"])
async def test_voicemail_greeting_ends_the_call(
    message: str | None,
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    config = make_config(
        call=OUTBOUND,
        first_message=FIRST,
        voicemail=VoicemailDetection(enabled=True, message=message),
    )
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
    call.transport.push_caller_audio(await speak(MAILBOX))
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.VOICEMAIL
    assert fake_openai.requests == []
    assert outcome.details["voicemailPhrase"] == "voicemail"
    greeting = next(m for m in outcome.messages if m["role"] == "user")
    assert "voicemail" in greeting["content"].lower()
    assert call.transport.hung_up
    if message is None:
        assert outcome.summary == "Voicemail detected. No message left."
        assert call.transport.played == []
        assert not [m for m in outcome.messages if m["role"] == "assistant"]
    else:
        assert outcome.summary == f"Voicemail detected. Left message: {LEFT}"
        # the first message was never said, only the message for the mailbox
        assert words(await call.heard()) == words(LEFT)
        assert outcome.transcript.splitlines()[-1] == f"AI: {LEFT}"


async def test_person_answering_gets_the_first_message(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
) -> None:
    config = make_config(
        call=OUTBOUND, first_message=FIRST, voicemail=VoicemailDetection(enabled=True, message=LEFT)
    )
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
    await call.caller_turn(spoken["Hello?"])
    await call.idle_after(1, what="the first message")
    outcome = await call.hang_up()

    assert outcome.ended_reason == ended_reasons.CUSTOMER_ENDED_CALL
    assert outcome.summary is None
    assert words(await call.heard()) == words(FIRST)
    # the first message answers the "Hello?": no separate LLM reply
    assert fake_openai.requests == []
    user, agent = outcome.transcript.splitlines()
    assert words(user) == ["user", "hello"]
    assert agent == f"AI: {FIRST}"


async def test_silent_callee_gets_the_first_message_after_the_wait(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    config = make_config(
        call=OUTBOUND,
        first_message=FIRST,
        voicemail=VoicemailDetection(enabled=True, message=LEFT, greeting_wait_s=0.5),
    )
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)
    await call.idle_after(1, what="the first message")
    outcome = await call.hang_up()

    first_audio = call.transport.first_played_at
    assert first_audio is not None
    assert first_audio - outcome.started_monotonic >= 0.5
    assert outcome.transcript == f"AI: {FIRST}"


def test_guide_phrases_are_recognised() -> None:
    for text, phrase in [
        ("The person you are calling is not available.", "not available"),
        ("Please record your message after the tone.", "please record"),
        ("Spreek een bericht in na de piep.", "spreek een bericht in"),
        ("You can press star to skip.", "press star"),
        ("Hello, this is John speaking.", None),
        ("Leave your message after the beep.", "leave your message"),
        ("Messages are nice", None),  # whole words only
    ]:
        assert voicemail_phrase(text) == phrase, text


async def test_gate_decides_once() -> None:
    gate = VoicemailGate(active=True)
    assert gate.examine("Hello, who is this?") is Verdict.HUMAN
    assert gate.examine("please leave a message") is None  # only the first utterance counts
    assert await gate.verdict() is Verdict.HUMAN
    assert (await VoicemailGate(active=False).verdict()) is Verdict.HUMAN
