"""Streaming everywhere: each sentence goes to TTS as soon as the LLM completes it,
so the caller hears the first sentence while the LLM is still writing the rest."""

from __future__ import annotations

import httpx

from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import start_call
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.speech import words

ANSWER = "Yes, we are open. See you soon."


async def test_first_sentence_plays_before_the_llm_has_finished(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    # 7 tokens, 0.3 s apart: the stream takes about 2.1 s, the first sentence 1.5 s
    fake_openai.enqueue(Reply.say(ANSWER, chunk_delay=0.3))
    call = await start_call(make_config(), http=http, llm=llm, stt=stt, tts=tts)
    await call.session.control(
        {"type": "inject-context", "content": "Are you open?", "trigger_response": True}
    )
    await call.agent_says_something()
    assert fake_openai.completed == 0, "the first audio waited for the whole LLM answer"
    await call.idle_after(1, what="the whole answer")
    outcome = await call.hang_up()

    assert fake_openai.completed == 1
    [turn] = outcome.turns
    assert turn.llm_first_sentence_ms is not None
    assert turn.first_audio_ms is not None
    assert turn.llm_first_sentence_ms < 2200  # "Yes, we are open." after 5 tokens
    assert turn.first_audio_ms < 2500
    assert words(await call.heard()) == words(ANSWER)
    assert outcome.transcript == f"AI: {ANSWER}"
