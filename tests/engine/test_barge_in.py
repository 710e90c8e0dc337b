"""Barge-in with real speech: the caller talks over a long answer and the agent stops;
a backchannel or a cough while the agent talks changes nothing."""

from __future__ import annotations

import httpx
import numpy as np

from flireo.engine.config import BargeIn
from flireo.engine.interruption import content_words, interrupts_after, interrupts_now
from flireo.media.frames import SAMPLE_RATE
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import silence, start_call
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.speech import words

LONG_ANSWER = (
    "Our opening hours are from nine in the morning until five in the afternoon on weekdays. "
    "On Saturdays we open a little later, at ten, and we close at four. "
    "On Sundays and public holidays the office is closed, but you can leave a message. "
    "If you need urgent help outside these hours, please call our emergency line."
)
GREETING = (
    "Hello, this is Anna from the dental practice, thank you for calling us today. How can I help?"
)


def cough(seconds: float = 0.25) -> bytes:
    """A short burst of decaying noise, like a cough on a phone line (fixed seed)."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    noise = rng.normal(0.0, 1.0, t.size) * np.exp(-t * 18.0) * 12_000
    return bytes(noise.clip(-32_000, 32_000).astype("<i2").tobytes())


async def test_caller_interrupts_agent_mid_answer(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
) -> None:
    # the answer streams slowly, so the LLM is still talking when the caller cuts in; the
    # answer to the interruption waits, so nothing but the cut answer is ever played
    fake_openai.enqueue(
        Reply.say(LONG_ANSWER, chunk_delay=0.15),
        Reply.say("Sure, go ahead.", first_token_delay=5.0),
    )
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)

    await call.session.control(
        {"type": "inject-context", "content": "Tell the opening hours.", "trigger_response": True}
    )
    await call.agent_says_something()
    answer_start = call.transport.first_played_at
    assert answer_start is not None
    await call.until(
        lambda: call.frames()[-1].at - answer_start > 1.0, what="a second of the answer played"
    )
    said_at = call.clock.monotonic()
    call.transport.push_caller_audio(spoken["Wait, stop. I have a question."] + silence(0.6))
    await call.until(lambda: bool(call.interruptions()), what="barge-in")
    await call.until(lambda: len(fake_openai.requests) == 2, what="the caller's turn answered")
    outcome = await call.hang_up()

    barge = call.interruptions()[0]
    assert len(call.interruptions()) == 1
    # the queued answer was dropped at the decision: nothing more of it was played
    assert any(abs(at - barge.at) < 0.02 for at in call.transport.clears)
    assert call.frames(since=barge.at + 0.1) == []
    # the first syllables held the agent's speech (BargeIn.hold_ms), the words cleared it
    held_at = next(at for at, held in call.transport.pauses if held)
    assert said_at < held_at <= barge.at  # (how soon: bench/turn_taking.py's time to stop)
    assert call.frames(since=held_at - 0.5, until=held_at)  # it was talking until then
    assert call.frames(since=held_at + 0.05) == []
    # the LLM stream and the speech of sentences not said yet were cancelled
    await fake_openai.wait_for_disconnects(1)
    assert outcome.usage.tts_characters < len(LONG_ANSWER)
    assert outcome.turns[0].interrupted

    # the record holds what the caller heard, not the whole answer
    cut = [m for m in outcome.messages if m.get("interrupted")]
    assert len(cut) == 1
    said = cut[0]["content"]
    assert said == barge.heard
    assert 3 <= len(words(said)) < len(words(LONG_ANSWER)) // 2
    assert words(said) == words(LONG_ANSWER)[: len(words(said))]
    heard = await call.heard(since=answer_start, until=barge.at)
    assert abs(len(words(heard)) - len(words(said))) <= 3, (heard, said)
    # and that is what the LLM was told it said
    history = fake_openai.requests[1]["messages"]
    assert {"role": "assistant", "content": said} in history
    assert words(history[-1]["content"]) == words("Wait, stop. I have a question.")
    assert outcome.transcript.splitlines()[-1] == f"User: {history[-1]['content']}"


async def test_backchannel_and_cough_do_not_interrupt(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
) -> None:
    call = await start_call(
        make_config(first_message=GREETING), http=http, llm=llm, stt=stt, tts=tts
    )
    await call.agent_says_something(within=5)
    start = call.transport.first_played_at
    assert start is not None
    await call.until(lambda: call.frames()[-1].at - start > 0.5, what="greeting under way")
    await call.transport.caller_says(spoken["Mm-hmm."] + silence(0.8))
    await call.transport.caller_says(cough() + silence(0.8))
    assert not call.agent_idle(), "the greeting should still be playing"
    await call.idle_after(1, what="the whole greeting")
    outcome = await call.hang_up()

    assert call.interruptions() == []
    assert call.transport.clears == []
    # "mm-hmm" held the greeting for a moment, then it went on where it stopped
    holds = call.transport.pauses
    assert holds
    assert [held for _, held in holds] == [True, False] * (len(holds) // 2)
    for (held_at, _), (released_at, _) in zip(holds[::2], holds[1::2], strict=True):
        # let go when the final transcript said "backchannel" (its time depends on the
        # machine's load), and never later than the hold's own limit
        assert released_at - held_at <= BargeIn().hold_max_s + 0.1
        assert call.frames(since=released_at, until=released_at + 0.3)  # it went on
    assert fake_openai.requests == []  # nothing the caller did asked for an answer
    assert outcome.transcript == f"AI: {GREETING}"
    assert not outcome.turns[0].interrupted
    assert words(await call.heard()) == words(GREETING)


def test_barge_in_policy() -> None:
    policy = BargeIn(min_speech_ms=500, min_words=2, min_final_words=1)
    # while the caller talks: enough voice, or enough real words in a streaming partial
    assert not interrupts_now(policy, voiced_ms=440, partial=None)  # "Mm-hmm." measured
    assert interrupts_now(policy, voiced_ms=500, partial=None)
    assert not interrupts_now(policy, voiced_ms=100, partial="mm-hmm okay yeah")
    assert not interrupts_now(policy, voiced_ms=100, partial="okay wait")
    assert interrupts_now(policy, voiced_ms=100, partial="okay wait stop")
    # a short utterance that is over: a real word makes it a turn, sounds do not
    assert interrupts_after(policy, "Stop.")
    assert interrupts_after(policy, "Sorry?")
    assert not interrupts_after(policy, "Mm-hmm.")
    assert not interrupts_after(policy, "MMM.")
    assert not interrupts_after(policy, "Uh-huh, I see.")
    assert not interrupts_after(policy, "(coughs)")
    assert not interrupts_after(policy, "")
    assert content_words("Okay, got it, but wait") == ["but", "wait"]
    # thresholds are the agent's to set; off means never
    strict = BargeIn(min_speech_ms=2000, min_words=4, min_final_words=3)
    assert not interrupts_now(strict, voiced_ms=1500, partial="wait stop now")
    assert not interrupts_after(strict, "Wait, stop.")
    assert interrupts_after(strict, "Wait, stop, please.")
    off = BargeIn(enabled=False)
    assert not interrupts_now(off, voiced_ms=10_000, partial="stop stop stop stop")
    assert not interrupts_after(off, "Stop talking please.")
