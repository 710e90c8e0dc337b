"""Voicemail detection on an outbound call's first utterance, on the
speech-to-speech path: the vendor's own transcript of the callee's greeting
decides, as the cascade's Whisper transcript does in ``test_voicemail.py``.
"""

from __future__ import annotations

import httpx
import pytest

from flireo.engine import ended_reasons
from flireo.engine.config import CallInfo, VoicemailDetection
from flireo.engine.events import CallerInterrupted
from flireo.engine.realtime_session import VERBATIM
from flireo.providers.realtime.xai import XaiRealtimeModel
from tests.engine.conftest import make_config, spoken_reply, vendor_listening
from tests.engine.harness import start_call
from tests.fakes.xai_realtime import FakeXaiRealtime
from tests.speech import words

MAILBOX = "Hi, you have reached the voicemail of John. Please leave a message after the beep."
FIRST = "Hello, this is Anna from the bakery."
LEFT = "Hi John, please call Anna back."
OUTBOUND = CallInfo(call_id="call-out-1", direction="outbound", customer_number="+31612345678")


def instructions(fake: FakeXaiRealtime) -> list[str | None]:
    return [
        (e.get("response") or {}).get("instructions") for e in fake.received_of("response.create")
    ]


@pytest.mark.parametrize("message", [LEFT, None], ids=["leaves-message", "hangs-up-silently"])
async def test_voicemail_greeting_ends_the_call(
    message: str | None,
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    if message is not None:
        fake.enqueue_response(await spoken_reply(message))
    config = make_config(
        call=OUTBOUND,
        first_message=FIRST,
        voicemail=VoicemailDetection(enabled=True, message=message),
    )
    call = await start_call(config, http=http, realtime=realtime_model)
    await vendor_listening(call, fake)
    # the mailbox greeting: the vendor's VAD hears it and its model starts answering it
    # (in real time) before its transcript of the greeting arrives
    fake.speech_started()
    fake.speech_stopped()
    reply = await spoken_reply("Hello! How can I help you today?")
    fake.say(reply.text, reply.pcm, delta_delay=0.04)
    await call.agent_says_something(within=5)
    fake.user_transcript(MAILBOX)
    outcome = await call.finished()

    assert outcome.ended_reason == ended_reasons.VOICEMAIL
    assert outcome.details["voicemailPhrase"] == "voicemail"
    assert [m["content"] for m in outcome.messages if m["role"] == "user"] == [MAILBOX]
    assert call.transport.hung_up
    # the model's own answer to the mailbox was stopped at once; the first message never asked
    [stopped] = call.of(CallerInterrupted)
    await fake.wait_for("response.cancel")
    assert VERBATIM.format(FIRST) not in instructions(fake)
    cut = [m for m in outcome.messages if m["role"] == "assistant" and m.get("interrupted")]
    assert all(m["content"] in reply.text for m in cut)
    said = [m for m in outcome.messages if m["role"] == "assistant" and not m.get("interrupted")]
    if message is None:
        assert outcome.summary == "Voicemail detected. No message left."
        assert instructions(fake) == []
        assert said == []
        assert call.frames(since=stopped.at) == []  # nothing more was played
    else:
        assert outcome.summary == f"Voicemail detected. Left message: {LEFT}"
        assert instructions(fake) == [VERBATIM.format(LEFT)]
        assert [(m["content"], m["source"]) for m in said] == [(LEFT, "goodbye")]
        assert words(await call.heard(since=stopped.at)) == words(LEFT)  # only the message
        assert outcome.transcript.splitlines()[-1] == f"AI: {LEFT}"


async def test_person_answering_gets_the_first_message(
    fake_xai_realtime: FakeXaiRealtime,
    realtime_model: XaiRealtimeModel,
    http: httpx.AsyncClient,
) -> None:
    fake = fake_xai_realtime
    fake.enqueue_response(await spoken_reply(FIRST))
    config = make_config(
        call=OUTBOUND, first_message=FIRST, voicemail=VoicemailDetection(enabled=True, message=LEFT)
    )
    call = await start_call(config, http=http, realtime=realtime_model)
    await vendor_listening(call, fake)
    fake.speech_started()
    fake.speech_stopped()
    fake.user_transcript("Hello?")
    await call.idle_after(1, what="the first message")
    outcome = await call.hang_up()

    assert outcome.ended_reason == ended_reasons.CUSTOMER_ENDED_CALL
    assert outcome.summary is None
    assert words(await call.heard()) == words(FIRST)
    # the first message answers the "Hello?": the only response asked for
    assert instructions(fake) == [VERBATIM.format(FIRST)]
    assert outcome.transcript.splitlines() == ["User: Hello?", f"AI: {FIRST}"]
