"""``bench/turn_taking.py`` cannot rot silently: three generated corpus items (a
question, a backchannel, an interruption, Piper on the phone path) are played
into live calls and scored by the bench's own code; the scoring itself is
checked on observations whose verdict is known."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from bench.turn_corpus import Item, build
from bench.turn_taking import Observation, Parts, RequestTimes, run_item, score, word_errors

from flireo.providers.llm.openai_compat import OpenAICompatibleLLM
from flireo.providers.stt.local_whisper import WhisperSTT
from flireo.providers.tts.local_piper import PiperTTS
from tests.fakes.openai_chat import FakeOpenAI


def _item(kind: str, **more: object) -> Item:
    fields: dict[str, object] = {
        "id": f"{kind}-1",
        "kind": kind,
        "voice": "piper-joe",
        "noise": "none",
        "snr_db": None,
        "text": "",
        "speech_start_s": 0.3,
        "speech_end_s": 1.0,
        "pauses": [],
        "turn_end_s": None,
        "expected": {"backchannel": "keep-talking", "interruption": "stop"}.get(
            kind, "answer-once"
        ),
        "duration_s": 4.0,
    }
    fields.update(more)
    return Item(**fields)  # type: ignore[arg-type]


def test_scoring_counts_what_happened() -> None:
    items = [
        _item("backchannel", text="Yeah."),
        _item("cough", id="cough-1"),
        _item("interruption", text="Wait, stop."),
        _item("interruption", id="interruption-2", text="No, stop."),
        _item(
            "pause",
            text="My name is Peter Johnson.",
            speech_end_s=2.5,
            pauses=[(1.0, 1.7)],
            turn_end_s=2.5,
        ),
        _item("question", text="What are your opening hours?", turn_end_s=1.8),
    ]
    observations = [
        Observation("backchannel-1", "backchannel", "none", None, interrupted=True, stop_s=1.2),
        Observation("cough-1", "cough", "none", None),
        Observation("interruption-1", "interruption", "none", None, True, 0.55, [], "Wait stop"),
        Observation("interruption-2", "interruption", "none", None),
        # asked during the pause (premature), then again after the last word
        Observation(
            "pause-1",
            "pause",
            "none",
            None,
            requests_s=[1.5, 3.4],
            heard="My name is. Peter Johnson.",
            stt_ms=[200.0, 500.0],
        ),
        Observation(
            "question-1",
            "question",
            "none",
            None,
            requests_s=[2.4],
            heard="What are your opening hours?",
            stt_ms=[150.0],
        ),
    ]
    result = score(items, observations)
    total = result["total"]
    assert total["false_barge_in_rate"] == 0.5  # the backchannel stopped the agent
    assert total["false_barge_in_backchannel_rate"] == 1.0
    assert total["missed_barge_in_rate"] == 0.5
    assert total["time_to_stop_p95_ms"] == 250.0  # 0.55 s after a first word at 0.3 s
    assert total["premature_end_of_turn_rate"] == 1.0
    assert total["premature_all_turns_rate"] == 0.5
    verdicts = {v["id"]: v for v in result["items"]}
    assert verdicts["pause-1"]["end_of_turn_ms"] == 900.0
    assert verdicts["pause-1"]["end_of_turn_decision_ms"] == 400.0  # the second turn's STT
    assert verdicts["question-1"]["end_of_turn_ms"] == 600.0
    assert not verdicts["pause-1"]["ok"]
    assert verdicts["question-1"]["ok"]
    assert total["end_of_turn_p50_ms"] == 750.0
    assert total["wer"] == 0.0
    targets = result["targets"]
    assert not targets["false_barge_in_rate"]["met"]
    assert not targets["premature_end_of_turn_rate"]["met"]
    assert targets["time_to_stop_p95_ms"]["met"]
    assert result["by_condition"]["clean"]["items"] == 6
    assert word_errors("open nine to five", "open 9 till five") == (1, 4)
    assert word_errors("wait", "") == (1, 1)


@pytest.mark.slow
async def test_corpus_items_scored_end_to_end(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    llm: OpenAICompatibleLLM,
    stt: WhisperSTT,
    tts: PiperTTS,
    http: httpx.AsyncClient,
) -> None:
    items = await build(
        tmp_path, conditions=[("none", None)], names=["q0", "b0", "i2"], voice="piper-joe"
    )
    assert sorted(i.kind for i in items) == ["backchannel", "interruption", "question"]
    times = RequestTimes()
    fake_openai.responder = times.responder
    parts = Parts(http, llm, stt, tts, times)
    observations = [await run_item(item, item.pcm(tmp_path), parts) for item in items]
    result = score(items, observations)
    verdicts = {v["kind"]: v for v in result["items"]}

    question = verdicts["question"]
    assert question["ok"]
    assert question["answered"]
    assert not question["premature"]
    # the 0.4 s silence timer, then Whisper: at least the silence, well under the settle time
    assert 400 <= question["end_of_turn_ms"] < 6_000
    assert question["word_errors"] <= 1
    interruption = verdicts["interruption"]  # "Wait, stop. I have a question."
    assert not interruption["missed_barge_in"], observations
    assert 0 < interruption["time_to_stop_ms"] < 4_000
    backchannel = verdicts["backchannel"]  # "Mm-hmm." over the greeting
    observed = next(o for o in observations if o.kind == "backchannel")
    assert backchannel["false_barge_in"] is observed.interrupted
    assert result["total"]["missed_barge_in_rate"] == 0.0
    assert result["total"]["items"] == 3
