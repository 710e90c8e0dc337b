from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import TypeVar

import numpy as np
import pytest

from flireo.errors import MissingCredentials, ProviderError
from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE
from flireo.providers.llm.base import ToolCall, ToolSpec
from flireo.providers.realtime.base import (
    RealtimeAudio,
    RealtimeError,
    RealtimeEvent,
    RealtimeResponseDone,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeToolCall,
    RealtimeTranscript,
)
from flireo.providers.realtime.xai import XaiRealtimeModel, XaiRealtimeSession
from tests.fakes.xai_realtime import FakeXaiRealtime, SpokenReply, tone

E = TypeVar("E")

BOOK = ToolSpec(
    name="book_table",
    description="Book a table",
    parameters={"type": "object", "properties": {"people": {"type": "integer"}}},
)


@pytest.fixture
def model(fake_xai_realtime: FakeXaiRealtime) -> XaiRealtimeModel:
    return XaiRealtimeModel(
        api_key=fake_xai_realtime.api_key, model="grok-voice-latest", url=fake_xai_realtime.url
    )


@pytest.fixture
async def session(model: XaiRealtimeModel) -> AsyncIterator[XaiRealtimeSession]:
    live = await model.connect(instructions="You take restaurant bookings.", tools=[BOOK])
    yield live
    await live.aclose()


async def next_of(events: AsyncIterator[RealtimeEvent], kind: type[E], within: float = 5) -> E:
    async with asyncio.timeout(within):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"events ended before a {kind.__name__}")


async def until_done(events: AsyncIterator[RealtimeEvent]) -> list[RealtimeEvent]:
    seen: list[RealtimeEvent] = []
    async with asyncio.timeout(5):
        async for event in events:
            seen.append(event)
            if isinstance(event, RealtimeResponseDone):
                return seen
    raise AssertionError(f"no response.done in {seen}")


async def test_session_update_configures_voice_tools_vad_and_24khz_pcm(
    fake_xai_realtime: FakeXaiRealtime, model: XaiRealtimeModel
) -> None:
    live = await model.connect(
        instructions="You take restaurant bookings.", tools=[BOOK], voice="ara", temperature=0.6
    )

    assert fake_xai_realtime.session == {
        "instructions": "You take restaurant bookings.",
        "voice": "ara",
        "turn_detection": {"type": "server_vad"},
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}},
            "output": {"format": {"type": "audio/pcm", "rate": 24000}},
        },
        "tools": [
            {
                "type": "function",
                "name": "book_table",
                "description": "Book a table",
                "parameters": BOOK.parameters,
            }
        ],
        "temperature": 0.6,
    }
    assert fake_xai_realtime.models == ["grok-voice-latest"]
    assert fake_xai_realtime.headers[0]["authorization"] == f"Bearer {fake_xai_realtime.api_key}"
    await live.aclose()


async def test_caller_audio_is_resampled_to_24khz_and_sent_as_base64(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    caller = tone(1.0, SAMPLE_RATE, hz=440.0)
    frames = [caller[i : i + FRAME_BYTES] for i in range(0, len(caller), FRAME_BYTES)]

    for frame in frames:
        await session.send_audio(frame)
    appended = await fake_xai_realtime.wait_for("input_audio_buffer.append", count=len(frames))

    assert base64.b64decode(appended["audio"])  # each 20 ms frame went out on its own
    received = np.frombuffer(fake_xai_realtime.audio_in, dtype="<i2").astype(np.float64)
    assert abs(len(received) - 24_000) < 240  # ~1 s at 24 kHz, minus what QQ holds back
    spectrum = np.abs(np.fft.rfft(received))
    peak_hz = np.argmax(spectrum) * 24_000 / len(received)
    assert abs(peak_hz - 440.0) < 5


async def test_vendor_audio_and_transcript_come_out_decoded_at_24khz(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    speech = tone(0.3, 24_000, hz=300.0)
    fake_xai_realtime.say("Table for two.", pcm=speech)

    events = await until_done(session.events())

    audio = [e for e in events if isinstance(e, RealtimeAudio)]
    assert b"".join(a.pcm for a in audio) == speech
    assert {a.sample_rate for a in audio} == {24_000}
    words = [e for e in events if isinstance(e, RealtimeTranscript)]
    assert "".join(w.text for w in words if not w.is_final) == "Table for two."
    assert words[-1] == RealtimeTranscript("assistant", "Table for two.", is_final=True)
    assert events[-1] == RealtimeResponseDone(input_tokens=20, output_tokens=10)


async def test_server_vad_and_caller_transcript_become_events(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    fake_xai_realtime.speech_started()
    fake_xai_realtime.speech_stopped()
    fake_xai_realtime.user_transcript("A table for four tonight")
    events = session.events()

    assert await next_of(events, RealtimeSpeechStarted) == RealtimeSpeechStarted()
    assert await next_of(events, RealtimeSpeechStopped) == RealtimeSpeechStopped()
    assert await next_of(events, RealtimeTranscript) == RealtimeTranscript(
        "user", "A table for four tonight", is_final=True
    )


async def test_tool_call_round_trip(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    fake_xai_realtime.enqueue_response(SpokenReply("Booked for four."))
    fake_xai_realtime.function_call("book_table", {"people": 4}, call_id="call_7")
    events = session.events()

    requested = await next_of(events, RealtimeToolCall)
    await next_of(events, RealtimeResponseDone)  # the response that asked for the call
    await session.send_tool_result("call_7", '{"ok": true}')
    after = await until_done(events)

    assert requested == RealtimeToolCall(ToolCall("call_7", "book_table", {"people": 4}))
    output = await fake_xai_realtime.wait_for("conversation.item.create")
    assert output["item"] == {
        "type": "function_call_output",
        "call_id": "call_7",
        "output": '{"ok": true}',
    }
    kinds = [e["type"] for e in fake_xai_realtime.received]
    assert kinds.index("response.create") > kinds.index("conversation.item.create")
    finals = [e for e in after if isinstance(e, RealtimeTranscript) and e.is_final]
    assert finals == [RealtimeTranscript("assistant", "Booked for four.", is_final=True)]


async def test_cancel_stops_the_response_being_spoken(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    fake_xai_realtime.enqueue_response(
        SpokenReply("A very long answer " * 20, pcm=tone(3.0), delta_delay=0.02)
    )
    events = session.events()
    await session.respond("Greet the caller.")
    await next_of(events, RealtimeAudio)

    await session.cancel()
    done = await next_of(events, RealtimeResponseDone)

    cancel = await fake_xai_realtime.wait_for("response.cancel")
    assert cancel == {"type": "response.cancel"}
    create = fake_xai_realtime.received_of("response.create")[0]
    assert create["response"] == {"instructions": "Greet the caller."}
    assert isinstance(done, RealtimeResponseDone)


async def test_cancel_with_nothing_playing_reports_no_error(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    await session.cancel()
    await fake_xai_realtime.wait_for("response.cancel")
    fake_xai_realtime.error("quota nearly used", code="quota_warning")

    error = await next_of(session.events(), RealtimeError)

    # the vendor's "no active response" answer to the cancel was dropped
    assert error == RealtimeError("xAI realtime error: quota_warning: quota nearly used", False)


async def test_add_message_injects_context_without_a_response(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    await session.add_message("system", "The caller is a VIP.")
    await session.add_message("assistant", "Welcome back!")

    await fake_xai_realtime.wait_for("conversation.item.create", count=2)

    items = [e["item"] for e in fake_xai_realtime.received_of("conversation.item.create")]
    assert items == [
        {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "The caller is a VIP."}],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Welcome back!"}],
        },
    ]
    assert fake_xai_realtime.received_of("response.create") == []


async def test_dropped_websocket_is_a_fatal_error_and_ends_the_events(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    fake_xai_realtime.drop(code=1011)

    async with asyncio.timeout(5):
        events = [e async for e in session.events()]

    assert len(events) == 1
    assert isinstance(events[0], RealtimeError)
    assert events[0].fatal is True
    assert "1011" in events[0].message
    await session.send_audio(b"\x00" * FRAME_BYTES)  # dropped quietly after the failure


async def test_invalid_tool_arguments_are_a_non_fatal_error(
    fake_xai_realtime: FakeXaiRealtime, session: XaiRealtimeSession
) -> None:
    fake_xai_realtime.function_call("book_table", '{"people": fo', call_id="call_9")

    error = await next_of(session.events(), RealtimeError)

    assert error.fatal is False
    assert "book_table" in error.message


async def test_refused_session_update_fails_connect(
    fake_xai_realtime: FakeXaiRealtime, model: XaiRealtimeModel
) -> None:
    with pytest.raises(ProviderError) as err:
        await model.connect(instructions="hi", voice="darth")

    assert "Invalid voice" in err.value.message


async def test_wrong_key_is_refused_at_the_handshake(fake_xai_realtime: FakeXaiRealtime) -> None:
    model = XaiRealtimeModel(api_key="wrong", url=fake_xai_realtime.url)

    with pytest.raises(ProviderError) as err:
        await model.connect(instructions="hi")

    assert (err.value.status, err.value.retryable) == (403, False)


def test_missing_key_is_missing_credentials() -> None:
    with pytest.raises(MissingCredentials) as err:
        XaiRealtimeModel(api_key=None)
    assert err.value.provider == "xai"


async def test_without_a_model_the_url_has_no_query(fake_xai_realtime: FakeXaiRealtime) -> None:
    model = XaiRealtimeModel(api_key=fake_xai_realtime.api_key, url=fake_xai_realtime.url)

    live = await model.connect(instructions="hi")
    await live.aclose()

    assert fake_xai_realtime.models == [None]
    assert fake_xai_realtime.session["voice"] == "eve"
