"""A whole conversation with real speech: Piper caller → Whisper → fake OpenAI (SSE)
→ Piper agent → what the caller hears, transcribed back with Whisper."""

from __future__ import annotations

import httpx

from flireo.engine import ended_reasons
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.engine.conftest import make_config
from tests.engine.harness import silence, start_call
from tests.fakes.openai_chat import FakeOpenAI, Reply
from tests.speech import words


async def test_agent_greets_then_answers_what_the_caller_asked(
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
    spoken: dict[str, bytes],
) -> None:
    fake_openai.enqueue(Reply.say("We are open from nine to five.", chunk_delay=0.01))
    config = make_config(first_message="Hello, this is Anna.")
    call = await start_call(config, http=http, llm=llm, stt=stt, tts=tts)

    await call.agent_says_something(within=5)
    await call.until(lambda: call.turns_done() == 1 and call.agent_idle(), what="greeting")
    greeting_end = call.transport.last_played_at
    await call.transport.caller_says(spoken["What are your opening hours?"] + silence(0.6))
    await call.until(lambda: call.turns_done() == 2 and call.agent_idle(), what="answer")
    outcome = await call.hang_up()

    assert words(await call.heard(until=greeting_end)) == words("Hello, this is Anna.")
    assert words(await call.heard(since=greeting_end + 0.01)) == words(
        "We are open from nine to five."
    )
    sent = fake_openai.last_request["messages"]
    assert sent[0] == {"role": "system", "content": "You are a friendly receptionist. Be brief."}
    assert sent[1] == {"role": "assistant", "content": "Hello, this is Anna."}
    assert words(sent[2]["content"]) == words("What are your opening hours?")
    assert outcome.ended_reason == ended_reasons.CUSTOMER_ENDED_CALL
    assert outcome.transcript.splitlines() == [
        "AI: Hello, this is Anna.",
        f"User: {sent[2]['content']}",
        "AI: We are open from nine to five.",
    ]
    answer = outcome.turns[-1]
    assert answer.trigger == "user"
    assert answer.stt_ms is not None
    assert answer.llm_first_token_ms is not None
    assert answer.tts_first_byte_ms is not None
    assert answer.first_audio_ms is not None
    assert answer.first_audio_ms < 3000
    assert outcome.usage.stt_seconds > 1.0
    assert outcome.usage.tts_characters == len("Hello, this is Anna.") + len(
        "We are open from nine to five."
    )
    assert outcome.usage.llm_completion_tokens > 0
