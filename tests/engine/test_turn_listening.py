"""How caller frames reach turn-taking: the transport hands each frame to a
synchronous sink; silence with a per-utterance STT is done there without waking the
engine's task, everything else is handled by that task in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from flireo.clock import SystemClock
from flireo.engine.config import Endpointing
from flireo.engine.metrics import Usage
from flireo.engine.transport import FrameSink
from flireo.engine.turns import TurnTaker, Utterance
from flireo.media.frames import FRAME_BYTES
from flireo.providers.stt.base import Transcript
from tests.speech import speak

SILENCE = bytes(FRAME_BYTES)


class RecordingStream:
    """A per-utterance STT stream that keeps what it was given (the turn-taker's view
    of an STT; the vendors' real streams are tested against their fakes)."""

    def __init__(self) -> None:
        self.pushed: list[bytes] = []
        self.finalized = 0
        self._out: asyncio.Queue[Transcript | None] = asyncio.Queue()

    async def push(self, pcm: bytes) -> None:
        self.pushed.append(pcm)

    async def finalize(self) -> None:
        self.finalized += 1
        self._out.put_nowait(Transcript(text=f"utterance {self.finalized}", is_final=True))

    async def transcripts(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            yield item

    async def aclose(self) -> None:
        self._out.put_nowait(None)


class Listener:
    def __init__(self) -> None:
        self.started: list[int] = []
        self.ended: list[int] = []
        self.finals: list[str] = []

    def speech_started(self, utterance: Utterance) -> None:
        self.started.append(utterance.index)

    def speech_continues(self, utterance: Utterance) -> None:
        pass

    def turn_ended(self, utterance: Utterance) -> None:
        self.ended.append(utterance.index)

    def turn_final(self, utterance: Utterance) -> None:
        self.finals.append(utterance.text)


class BurstTransport:
    """Calls the sink for a batch of frames in one go (as the RTP pacer does for
    each tick), yielding to the loop between batches; the media ends after the last."""

    def __init__(self, batches: Sequence[Sequence[bytes]]) -> None:
        self._batches = batches

    async def listen(self, sink: FrameSink) -> None:
        for batch in self._batches:
            for frame in batch:
                sink(frame)
            for _ in range(3):
                await asyncio.sleep(0)


def frames_of(pcm: bytes) -> list[bytes]:
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


async def test_silence_is_handled_in_the_sink_and_speech_reaches_the_stt_in_order() -> None:
    stream = RecordingStream()
    listener = Listener()
    turns = TurnTaker(
        stream,
        utterance_based=True,
        endpointing=Endpointing(silence_s=0.4, preroll_ms=200),
        clock=SystemClock(),
        listener=listener,
        usage=Usage(),
    )
    speech = frames_of(await speak("Could you book me a table for two tonight?"))
    quiet = [SILENCE] * 100
    transport = BurstTransport([quiet, *([f] for f in speech), [SILENCE] * 60])
    transcripts = asyncio.create_task(turns.consume_transcripts())
    await turns.consume(transport)  # type: ignore[arg-type]
    await stream.aclose()
    await transcripts

    # the two silent seconds before the caller spoke never reached the engine's task
    # nor the STT; the one utterance did, with its pre-roll, in the order heard
    assert listener.started == [1]
    assert listener.ended == [1]
    assert listener.finals == ["utterance 1"]
    assert stream.finalized == 1
    pushed = b"".join(stream.pushed)
    spoken = b"".join(speech)
    assert spoken.strip(b"\x00")[:3200] in pushed  # speech onset, unbroken and in order
    assert len(pushed) < len(spoken) + 60 * FRAME_BYTES  # not the leading silence
    assert turns.frames_inline >= 100
    assert turns.frames_queued > 0
    assert turns.frames_dropped == 0


async def test_a_vad_failure_in_the_sink_is_raised_on_the_engine_task() -> None:
    turns = TurnTaker(
        RecordingStream(),
        utterance_based=True,
        endpointing=Endpointing(),
        clock=SystemClock(),
        listener=Listener(),
        usage=Usage(),
    )
    transport = BurstTransport([[SILENCE, b"\x00" * 3], [SILENCE] * 10])  # an odd-length frame
    with pytest.raises(ValueError, match="s16le"):
        await asyncio.wait_for(turns.consume(transport), 5.0)  # type: ignore[arg-type]
