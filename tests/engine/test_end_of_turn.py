"""End of the caller's turn with a streaming STT: a pause after an unfinished phrase
("I would like to ...") waits up to ``Endpointing.max_extension_s`` longer for the
caller to go on; the same pause after a finished sentence ends the turn.

Real Piper speech goes through the engine's VAD to the local Deepgram fake,
whose partials reveal the queued words as speech is heard (``words_per_second``,
4 by default): after the 0.56 s of voiced audio in Piper's "I would like to"
it has said "I would like". Its ``Finalize`` answer holds all the words of the
queued sentence, heard or not, so the text alone cannot show where a turn
ended: the tests look at when the LLM was asked, against when the caller's
audio had all been heard.
"""

from __future__ import annotations

import httpx
import pytest

from flireo.engine.config import Endpointing
from flireo.engine.turns import end_of_turn_wait, ends_mid_phrase
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.deepgram import DeepgramSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import silence, start_call
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.speech import speak

ENDPOINTING = Endpointing(silence_s=0.4, max_extension_s=1.5)
#: longer than the silence that ends a turn, shorter than that silence plus the extension
PAUSE = 0.8


@pytest.fixture
def deepgram(fake_deepgram: FakeDeepgram) -> DeepgramSTT:
    return DeepgramSTT(api_key=fake_deepgram.api_key, url=fake_deepgram.url)


def words_before_the_pause(fake: FakeDeepgram) -> str:
    """What the STT had fixed when the caller paused: its first endpoint result."""
    first = next(r for r in fake.session.sent if r.get("speech_final"))
    return str(first["channel"]["alternatives"][0]["transcript"])


def user_turns(messages: list[dict[str, object]]) -> list[object]:
    return [m["content"] for m in messages if m["role"] == "user"]


async def test_a_pause_after_an_unfinished_phrase_does_not_end_the_turn(
    fake_deepgram: FakeDeepgram,
    deepgram: DeepgramSTT,
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    sentence = "I would like to book a table for two."
    fake_deepgram.enqueue_utterances(sentence)
    fake_openai.enqueue(Reply.say("For what time?"))
    config = make_config(endpointing=ENDPOINTING)
    call = await start_call(config, http=http, llm=llm, stt=deepgram, tts=tts)

    first, rest = await speak("I would like to"), await speak("book a table for two.")
    await call.transport.caller_says(first + silence(PAUSE) + rest)
    assert fake_openai.requests == []  # the pause did not end the turn
    await call.idle_after(1, what="the answer to the whole sentence")
    outcome = await call.hang_up()

    assert ends_mid_phrase(words_before_the_pause(fake_deepgram))  # "I would like"
    assert user_turns(outcome.messages) == [sentence]  # one turn with both parts
    [request] = fake_openai.requests  # and one LLM request, after the second part
    assert request["messages"][-1] == {"role": "user", "content": sentence}
    assert fake_deepgram.session.controls.count("Finalize") == 1
    assert [t.trigger for t in outcome.turns] == ["user"]


async def test_the_same_pause_after_a_finished_sentence_ends_the_turn(
    fake_deepgram: FakeDeepgram,
    deepgram: DeepgramSTT,
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
) -> None:
    question, booking = "What are your opening hours?", "Please book a table for two."
    fake_deepgram.enqueue_utterances(question, booking)
    fake_openai.enqueue(Reply.say("We open at nine."), Reply.say("Done."))
    config = make_config(endpointing=ENDPOINTING)
    call = await start_call(config, http=http, llm=llm, stt=deepgram, tts=tts)

    await call.transport.caller_says(spoken[question] + silence(PAUSE) + spoken[booking])
    # the pause ended the turn: the LLM was asked while the caller was still talking
    assert len(fake_openai.requests) == 1
    await call.idle_after(2, what="the answer to the second sentence")
    outcome = await call.hang_up()

    assert not ends_mid_phrase(words_before_the_pause(fake_deepgram))
    assert user_turns(outcome.messages) == [question, booking]  # two turns
    first, second = fake_openai.requests
    assert first["messages"][-1] == {"role": "user", "content": question}
    assert second["messages"][-1] == {"role": "user", "content": booking}
    assert fake_deepgram.session.controls.count("Finalize") == 2


@pytest.mark.parametrize(
    ("partial", "unfinished"),
    [
        ("I would like to", True),
        ("my name is Jan and", True),
        ("Well,", True),
        ("book it for the", True),
        ("What are your opening hours?", False),
        ("Book a table for two.", False),
        ("Jan de Vries", False),
        ("", False),
    ],
)
def test_a_partial_that_sounds_unfinished_extends_the_wait(partial: str, unfinished: bool) -> None:
    assert ends_mid_phrase(partial) is unfinished
    assert end_of_turn_wait(partial, ENDPOINTING) == (1.5 if unfinished else 0.0)
    assert end_of_turn_wait(partial, Endpointing(max_extension_s=0.0)) == 0.0  # switched off
