"""The Smart Turn model in turn-taking (``Endpointing.turn_model``), with real Piper
speech from the turn-taking corpus's voice, played in real time:

- a finished question ends the turn on the first end-of-speech candidate;
- a 1 s pause after an unfinished phrase ("I would like to book") does not: the
  caller's whole sentence is one turn, where the silence-only policy makes two;
- a backchannel or a cough while the agent talks does not barge in, "Wait, stop."
  does, with the model's shorter end-of-speech candidate;
- with ``noise_suppression`` the VAD, the STT and the model hear RNNoise's output.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import httpx
import numpy as np
import pytest
from bench.turn_corpus import Voices

from flireo.clock import SystemClock
from flireo.engine.config import Endpointing
from flireo.engine.metrics import Usage
from flireo.engine.transport import FrameSink
from flireo.engine.turns import TurnTaker, Utterance
from flireo.media.frames import FRAME_BYTES, FRAME_MS, SAMPLE_RATE
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.base import Transcript
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import silence, start_call
from tests.fakes.openai_chat import FakeOpenAI, Reply

MODEL = Endpointing(turn_model=True)
QUESTION = "What are your opening hours?"
BEFORE_PAUSE, AFTER_PAUSE = "I would like to book", "a table for two tomorrow evening."
GREETING = (
    "Hello, this is Anna from the dental practice, thank you for calling us today. "
    "We are open from nine in the morning until five in the afternoon on weekdays. "
    "How can I help?"
)


@pytest.fixture(scope="module")
def corpus_voice() -> dict[str, bytes]:
    """The corpus's Piper voice (random variation off), 16 kHz s16le, silence trimmed."""

    async def make() -> dict[str, bytes]:
        voices = Voices()
        texts = (QUESTION, BEFORE_PAUSE, AFTER_PAUSE, "Mm-hmm.", "Wait, stop. I have a question.")
        out = {}
        for text in texts:
            samples = await voices.say("piper-joe", text)
            out[text] = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        return out

    return asyncio.run(make())


class RecordingStream:
    """A per-utterance STT stream keeping what it was given (the turn-taker's view of an STT)."""

    def __init__(self, texts: Sequence[str] = ()) -> None:
        self.pushed: list[bytes] = []
        self.finalized = 0
        self._texts = list(texts)  # the finals it hears, in order (else "utterance N")
        self._out: asyncio.Queue[Transcript | None] = asyncio.Queue()

    async def push(self, pcm: bytes) -> None:
        self.pushed.append(pcm)

    async def finalize(self) -> None:
        self.finalized += 1
        n = self.finalized
        text = self._texts[n - 1] if n <= len(self._texts) else f"utterance {n}"
        self._out.put_nowait(Transcript(text=text, is_final=True))

    async def transcripts(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            yield item

    async def aclose(self) -> None:
        self._out.put_nowait(None)


class Listener:
    def __init__(self) -> None:
        self.ended: list[Utterance] = []
        self.finals: list[Utterance] = []
        self.released_at: list[float] = []  # monotonic time of each turn_final

    def speech_started(self, utterance: Utterance) -> None:
        pass

    def speech_continues(self, utterance: Utterance) -> None:
        pass

    def turn_ended(self, utterance: Utterance) -> None:
        self.ended.append(utterance)

    def turn_final(self, utterance: Utterance) -> None:
        self.finals.append(utterance)
        self.released_at.append(time.monotonic())


class PacedTransport:
    """Hands the sink one 20 ms frame every 20 ms of real time, like a phone line."""

    def __init__(self, pcm: bytes) -> None:
        pcm += bytes(-len(pcm) % FRAME_BYTES)
        self.frames: Sequence[bytes] = [
            pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)
        ]

    async def listen(self, sink: FrameSink) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, frame in enumerate(self.frames):
            sink(frame)
            await asyncio.sleep(max(0.0, start + (n + 1) * FRAME_MS / 1000 - loop.time()))


async def listen_to(
    pcm: bytes, endpointing: Endpointing, texts: Sequence[str] = ()
) -> tuple[TurnTaker, RecordingStream, Listener]:
    stream, listener = RecordingStream(texts), Listener()
    turns = TurnTaker(
        stream,
        utterance_based=True,
        endpointing=endpointing,
        clock=SystemClock(),
        listener=listener,
        usage=Usage(),
    )
    transcripts = asyncio.create_task(turns.consume_transcripts())
    await turns.consume(PacedTransport(pcm))  # type: ignore[arg-type]
    await stream.aclose()
    await transcripts
    return turns, stream, listener


def paused_sentence(voice: dict[str, bytes]) -> bytes:
    """The caller says "I would like to book", pauses 1 s, then the rest."""
    return silence(0.5) + voice[BEFORE_PAUSE] + silence(1.0) + voice[AFTER_PAUSE] + silence(3.0)


async def test_a_finished_question_ends_on_the_first_candidate(
    corpus_voice: dict[str, bytes],
) -> None:
    _, stream, listener = await listen_to(
        silence(0.5) + corpus_voice[QUESTION] + silence(3.0), MODEL
    )
    assert stream.finalized == 1
    (utterance,) = listener.ended
    assert len(utterance.turn_probabilities) == 1
    assert utterance.turn_probabilities[0] > 0.8
    assert utterance.turn_model_cpu_s > 0
    # decided on the 0.2 s candidate plus the verdict, far from the 2 s cap
    assert utterance.end_wait_s < 1.0


async def test_a_pause_after_an_unfinished_phrase_is_one_turn(
    corpus_voice: dict[str, bytes],
) -> None:
    audio = paused_sentence(corpus_voice)
    _, stream, listener = await listen_to(audio, MODEL)
    (utterance,) = listener.ended
    assert stream.finalized == 1
    first, *later = utterance.turn_probabilities
    assert first < 0.5  # "I would like to book": incomplete, so it waited
    assert later
    assert later[-1] > 0.5  # the whole sentence: complete
    # the STT had the whole sentence as one utterance
    assert len(b"".join(stream.pushed)) > len(
        corpus_voice[BEFORE_PAUSE] + corpus_voice[AFTER_PAUSE]
    )

    # the silence-only policy (0.4 s) cuts the same audio into two turns
    _, _, silence_only = await listen_to(audio, Endpointing())
    assert len(silence_only.ended) == 2


# a model that calls every candidate complete: what keeps an unfinished phrase and its
# continuation together is then the check of the per-utterance final's text
EAGER = Endpointing(turn_model=True, turn_model_threshold=0.001)
UNFINISHED, REST = "The problem is that.", "My card does not work."


async def test_a_final_that_ends_mid_phrase_waits_for_the_rest(
    corpus_voice: dict[str, bytes],
) -> None:
    audio = paused_sentence(corpus_voice)
    _, stream, listener = await listen_to(audio, EAGER, texts=[UNFINISHED, REST])
    assert stream.finalized == 2  # the model ended the first part, the STT heard it alone
    assert len(listener.ended) == 2
    (final,) = listener.finals  # but the listener got one turn, with both parts
    assert final.text == f"{UNFINISHED} {REST}"
    assert final.started_at == listener.ended[0].started_at
    assert len(final.turn_probabilities) == 2

    # the silence-only policy has no model, and holds nothing
    _, _, silence_only = await listen_to(audio, Endpointing(), texts=[UNFINISHED, REST])
    assert [u.text for u in silence_only.finals] == [UNFINISHED, REST]


async def test_a_held_final_goes_out_at_the_cap_and_a_finished_one_at_once(
    corpus_voice: dict[str, bytes],
) -> None:
    audio = silence(0.5) + corpus_voice[BEFORE_PAUSE] + silence(3.5)
    _, _, held = await listen_to(audio, EAGER, texts=[UNFINISHED])
    (final,) = held.finals
    assert final.text == UNFINISHED
    assert final.ended_at is not None
    # released at the 2 s cap (counted from the candidate), not when the text landed
    assert held.ended == [final]
    wait = EAGER.turn_model_max_wait_s - EAGER.turn_model_silence_s - final.end_wait_s
    assert wait > 1.0  # the model answered well before the cap
    released = held.released_at[0]
    assert released - final.ended_at >= wait - 0.1

    _, _, finished = await listen_to(audio, EAGER, texts=["What are your opening hours?"])
    (final,) = finished.finals
    assert finished.released_at[0] - (final.ended_at or 0) < 1.0


async def test_noise_suppression_cleans_what_the_vad_and_stt_hear(
    corpus_voice: dict[str, bytes],
) -> None:
    rng = np.random.default_rng(5)
    speech = silence(0.5) + corpus_voice[QUESTION] + silence(2.5)
    clean = np.frombuffer(speech, dtype="<i2").astype(np.float64)
    noisy = (clean + rng.normal(0, 300, clean.size)).clip(-32768, 32767).astype("<i2").tobytes()
    turns, stream, listener = await listen_to(
        noisy, Endpointing(turn_model=True, noise_suppression=True)
    )
    assert turns.denoiser is not None
    assert turns.denoiser.frames == len(noisy) // FRAME_BYTES
    assert len(listener.ended) == 1
    pushed = np.frombuffer(b"".join(stream.pushed), dtype="<i2").astype(np.float64)
    # the pre-roll in front of the speech is noise only: RNNoise took most of it away
    preroll = pushed[: SAMPLE_RATE // 10]
    assert np.sqrt(np.mean(preroll**2)) < 300 / 3


async def test_backchannel_does_not_barge_in_but_wait_stop_does(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    corpus_voice: dict[str, bytes],
) -> None:
    fake_openai.enqueue(Reply.say("Sure, go ahead."))
    call = await start_call(
        make_config(first_message=GREETING, endpointing=MODEL), http=http, llm=llm, stt=stt, tts=tts
    )
    await call.agent_says_something(within=20)
    start = call.transport.first_played_at
    assert start is not None
    await call.until(lambda: call.frames()[-1].at - start > 0.5, what="greeting under way")
    await call.transport.caller_says(corpus_voice["Mm-hmm."] + silence(1.0))
    cough = np.random.default_rng(7).normal(0, 1, 4000) * np.exp(-np.arange(4000) / 900) * 12000
    await call.transport.caller_says(
        cough.clip(-32000, 32000).astype("<i2").tobytes() + silence(1.0)
    )
    assert call.interruptions() == []
    assert call.transport.clears == []
    assert not call.agent_idle(), "the greeting should still be playing"

    said_at = call.clock.monotonic()
    call.transport.push_caller_audio(corpus_voice["Wait, stop. I have a question."] + silence(1.0))
    await call.until(lambda: bool(call.interruptions()), what="barge-in", within=20)
    await call.until(lambda: len(fake_openai.requests) >= 1, what="the caller's turn answered")

    outcome = await call.hang_up()
    barge = call.interruptions()[0]
    assert any(abs(at - barge.at) < 0.05 for at in call.transport.clears)
    # held at the first syllables, cleared once the words were heard
    held_at = next(at for at, held in call.transport.pauses if said_at < at and held)
    assert held_at <= barge.at
    assert call.frames(since=held_at - 0.5, until=held_at)  # it was talking until then
    assert call.frames(since=held_at + 0.05, until=barge.at + 0.5) == []  # and then stopped
    user = [str(m["content"]).lower() for m in outcome.messages if m["role"] == "user"]
    # the interruption reached the LLM ("Wait." is a whole sentence: the model may end
    # a turn on it at the comma, and "stop. I have a question." is then the next one)
    assert user
    assert "wait" in user[0]
