"""Turn-taking quality on a labelled corpus of phone-line caller audio.

Run: ``nice -n 10 .venv/bin/python bench/turn_taking.py`` (about 8 minutes on 2 cores;
``--limit N`` for a quick look). Prints a table and writes
``bench/results/turn_taking.json``.

The corpus (``bench/turn_corpus.py``, generated offline and cached under
``bench/.cache/turn_corpus/``) holds finished questions, questions with a
mid-sentence pause of 0.5-1.5 s, backchannels, coughs and clicks, and true
interruptions, in Piper and espeak-ng voices, clean and with pink, babble and
brown noise at 20, 10 and 5 dB SNR, all through the G.711 phone path.

Each item is played in real time into its own live
:class:`~flireo.engine.session.CallSession` over the memory transport, with the
default agent's parts: local Whisper STT, Piper TTS, the engine's VAD (webrtcvad
gate + Silero) and default endpointing/barge-in; the LLM is the fake OpenAI
server (``tests/fakes/openai_chat.py``) answering "Okay." and recording when
each request arrived. Items said while the agent talks are played 0.8 s into a
long greeting.

Metrics:

- false barge-in rate: backchannels, coughs and clicks that stopped the agent
  (its reply cleared); beside it how often one only held the agent's speech for
  a moment (``BargeIn.hold_ms``) and for how long before it went on;
- missed barge-in rate: true interruptions that did not stop it, and the
  time-to-stop p95 (the caller's first word → the agent fell silent: its speech
  held at the first syllables or cleared, for an item that then stopped it);
- premature end-of-turn rate: questions with a mid-sentence pause where the LLM
  was asked before the caller's last word;
- end-of-turn latency p50/p95: the caller's last word → the LLM request (the
  turn decision, with the STT that produces the text it sends);
- WER per SNR condition: what reached the LLM against what the caller said.

The policy measured is labelled in the results (``"policy"``), chosen with
``--policy``: ``baseline``, the silence-only end of turn (0.4 s of silence, the
streaming-partial extension does not apply to a per-utterance STT such as local
Whisper) and voiced-time/word barge-in, written at the top level of the JSON;
``smart-turn`` (what an agent gets by default, ``smartEndpointingEnabled``), the
Smart Turn model on each end-of-speech candidate (``Endpointing.turn_model``),
written under ``"after"`` beside the baseline, with the model's CPU per turn;
``smart-turn-denoise``, the same with RNNoise on the caller's audio
(``stt_config.noiseSuppression``), under ``"after_noise_suppression"``, with the
denoiser's CPU per call-second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.turn_corpus import CACHE, CONDITIONS, Item, build  # noqa: E402
from tests.engine.conftest import make_config  # noqa: E402
from tests.engine.harness import Call, start_call  # noqa: E402
from tests.fakes.openai_chat import FakeOpenAI, Reply  # noqa: E402
from tests.fakes.server import serve  # noqa: E402
from tests.speech import words  # noqa: E402

from flireo.engine.config import Endpointing  # noqa: E402
from flireo.media import denoise, smart_turn  # noqa: E402
from flireo.media.silero import silero_session  # noqa: E402
from flireo.providers.llm.openai_compat import OpenAICompatibleLLM  # noqa: E402
from flireo.providers.stt.local_whisper import WhisperSTT, load_whisper_model  # noqa: E402
from flireo.providers.tts.local_piper import PiperTTS, load_piper_voice  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "turn_taking.json"
POLICIES = {
    "baseline": ("silence-only baseline", Endpointing()),
    "smart-turn": ("smart turn v3.2 + silence cap", Endpointing(turn_model=True)),
    "smart-turn-denoise": (
        "smart turn v3.2 + silence cap, RNNoise on the caller's audio",
        Endpointing(turn_model=True, noise_suppression=True),
    ),
}
#: where each policy's run goes in the JSON (the baseline is the top level)
RESULT_KEYS = {"smart-turn": "after", "smart-turn-denoise": "after_noise_suppression"}
GREETING = (
    "Hello, this is Anna from the dental practice, thank you for calling us today. "
    "We are open from nine in the morning until five in the afternoon on weekdays, "
    "and on Saturdays from ten until four. How can I help you?"
)
ANSWER = "Okay."
#: the agent talks this long before the caller's item starts
AGENT_LEAD_S = 0.8
#: after the clip has played, how long a decision may still come (Whisper on a busy box)
SETTLE_S = 2.0
TARGETS = {
    "false_barge_in_rate": {"max": 0.05},
    "missed_barge_in_rate": {"max": 0.02},
    "time_to_stop_p95_ms": {"max": 300.0},
    "premature_end_of_turn_rate": {"max": 0.05},
    "end_of_turn_p50_ms": {"max": 300.0},
}


class RequestTimes:
    """The fake LLM's responder: notes when each chat request arrived (monotonic)."""

    def __init__(self) -> None:
        self.at: list[float] = []

    def responder(self, body: dict[str, Any]) -> Reply:
        self.at.append(time.monotonic())
        return Reply.say(ANSWER)


@dataclass
class Observation:
    """What one item did to the call, on the item's own timeline (s from its first frame)."""

    id: str
    kind: str
    noise: str
    snr_db: float | None
    #: the agent's audio was stopped (a barge-in) and when it fell silent for it (its
    #: speech held at the first syllables, BargeIn.hold_ms, or cleared)
    interrupted: bool = False
    stop_s: float | None = None
    #: seconds the agent's speech was held and then went on (a hold that was let go)
    held_s: float = 0.0
    #: LLM requests caused by the caller's audio
    requests_s: list[float] = field(default_factory=list)
    #: what reached the LLM as the caller's words (all user messages)
    heard: str = ""
    #: per caller turn the engine took: its STT time (end-of-turn decision → final text)
    stt_ms: list[float | None] = field(default_factory=list)
    #: CPU ms the turn model spent per end-of-speech candidate
    turn_model_cpu_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Parts:
    http: httpx.AsyncClient
    llm: OpenAICompatibleLLM
    stt: WhisperSTT
    tts: PiperTTS
    times: RequestTimes
    endpointing: Endpointing = field(default_factory=Endpointing)


async def _wait(call: Call, condition: Any, deadline: float) -> None:
    """Poll (like the test harness) until ``condition()``, the deadline, or the call's end."""
    while not condition():
        if time.monotonic() >= deadline or call.task.done():
            return
        await asyncio.sleep(0.01)


async def run_item(item: Item, pcm: bytes, parts: Parts) -> Observation:
    """Play one corpus item into a fresh call and observe what the agent did."""
    obs = Observation(item.id, item.kind, item.noise, item.snr_db)
    verdicts_before = len(smart_turn.cpu_log)
    first = len(parts.times.at)
    if item.while_agent_talks:
        config = make_config(first_message=GREETING, endpointing=parts.endpointing)
        call = await start_call(
            config, http=parts.http, llm=parts.llm, stt=parts.stt, tts=parts.tts
        )
        await call.agent_says_something(within=20)
        start = call.transport.first_played_at
        assert start is not None
        await call.until(
            lambda: call.frames()[-1].at - start >= AGENT_LEAD_S, what="the greeting under way"
        )
    else:
        call = await start_call(
            make_config(endpointing=parts.endpointing),
            http=parts.http,
            llm=parts.llm,
            stt=parts.stt,
            tts=parts.tts,
        )
    t0 = time.monotonic()
    call.transport.push_caller_audio(pcm)
    deadline = t0 + item.duration_s + SETTLE_S
    if item.while_agent_talks:
        await _wait(call, lambda: bool(call.interruptions() or call.transport.clears), deadline)
        stops = [i.at for i in call.interruptions()] + list(call.transport.clears)
        holds = [(at, held) for at, held in call.transport.pauses if at >= t0]
        if stops:
            obs.interrupted = True
            silenced = [at for at, held in holds if held and at <= min(stops)]
            obs.stop_s = min([*stops, *silenced]) - t0
            if item.kind == "interruption":  # its words reach the LLM: wait for them
                await _wait(call, lambda: len(parts.times.at) > first, deadline + 3.0)
    else:
        assert item.turn_end_s is not None
        turn_end = t0 + item.turn_end_s
        await _wait(
            call,
            lambda: any(at >= turn_end for at in parts.times.at[first:]),
            deadline + 3.0,
        )
    obs.requests_s = [at - t0 for at in parts.times.at[first:]]
    outcome = await call.hang_up()
    if item.while_agent_talks and not obs.interrupted:
        held_at: float | None = None
        for at, held in call.transport.pauses:
            if held and at >= t0:
                held_at = at
            elif not held and held_at is not None:
                obs.held_s += at - held_at
                held_at = None
    obs.heard = " ".join(
        str(m.get("content") or "") for m in outcome.messages if m["role"] == "user"
    )
    obs.stt_ms = [t.stt_ms for t in outcome.turns if t.trigger == "user"]
    obs.turn_model_cpu_ms = [round(c * 1000, 1) for c in smart_turn.cpu_log[verdicts_before:]]
    return obs


# --- scoring --------------------------------------------------------------------------


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words): Levenshtein over normalised words."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)], len(ref)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def judge(item: Item, obs: Observation) -> dict[str, Any]:
    """One item's verdict from its label and what happened."""
    verdict: dict[str, Any] = {"id": item.id, "kind": item.kind, "expected": item.expected}
    if item.while_agent_talks:
        if item.kind == "interruption":
            verdict["missed_barge_in"] = not obs.interrupted
            if obs.interrupted and obs.stop_s is not None:
                verdict["time_to_stop_ms"] = _ms(obs.stop_s - item.speech_start_s)
        else:
            verdict["false_barge_in"] = obs.interrupted
            verdict["held_ms"] = _ms(obs.held_s) if obs.held_s else 0.0
        verdict["ok"] = obs.interrupted == (item.expected == "stop")
    else:
        assert item.turn_end_s is not None
        early = [t for t in obs.requests_s if t < item.turn_end_s]
        late = [t for t in obs.requests_s if t >= item.turn_end_s]
        verdict["premature"] = bool(early)
        verdict["answered"] = bool(late)
        verdict["end_of_turn_ms"] = _ms(late[0] - item.turn_end_s) if late else None
        # the same without the STT's time: where the silence timer decided
        stt = obs.stt_ms[len(early)] if len(obs.stt_ms) > len(early) else None
        if late and stt is not None:
            verdict["stt_ms"] = stt
            verdict["end_of_turn_decision_ms"] = round(verdict["end_of_turn_ms"] - stt, 1)
        verdict["ok"] = not early and len(late) == 1
    if item.text and (item.kind in ("question", "pause") or obs.heard):
        verdict["word_errors"], verdict["reference_words"] = word_errors(item.text, obs.heard)
    verdict["heard"] = obs.heard
    return verdict


def _summary(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    noise = [v for v in verdicts if "false_barge_in" in v]
    backchannels = [v for v in noise if v["kind"] == "backchannel"]
    interruptions = [v for v in verdicts if "missed_barge_in" in v]
    pauses = [v for v in verdicts if v["kind"] == "pause"]
    turns = [v for v in verdicts if "premature" in v]
    stops = [v["time_to_stop_ms"] for v in interruptions if v.get("time_to_stop_ms") is not None]
    eot = [v["end_of_turn_ms"] for v in turns if v.get("end_of_turn_ms") is not None]
    decisions = [v["end_of_turn_decision_ms"] for v in turns if "end_of_turn_decision_ms" in v]
    stt = [v["stt_ms"] for v in turns if "stt_ms" in v]
    errors = sum(v.get("word_errors", 0) for v in verdicts)
    ref = sum(v.get("reference_words", 0) for v in verdicts)
    p = percentile
    return {
        "items": len(verdicts),
        "false_barge_in_rate": _rate(sum(v["false_barge_in"] for v in noise), len(noise)),
        "false_barge_in_backchannel_rate": _rate(
            sum(v["false_barge_in"] for v in backchannels), len(backchannels)
        ),
        "false_barge_in_cough_click_rate": _rate(
            sum(v["false_barge_in"] for v in noise if v["kind"] != "backchannel"),
            len(noise) - len(backchannels),
        ),
        # a backchannel, cough or click that held the agent's speech for a moment
        # (BargeIn.hold_ms) and then let it go on: not a barge-in, a short pause
        "held_without_barge_in_rate": _rate(
            sum(bool(v["held_ms"]) for v in noise if not v["false_barge_in"]), len(noise)
        ),
        "hold_p50_ms": _round(p([v["held_ms"] for v in noise if v["held_ms"]], 50)),
        "hold_p95_ms": _round(p([v["held_ms"] for v in noise if v["held_ms"]], 95)),
        "missed_barge_in_rate": _rate(
            sum(v["missed_barge_in"] for v in interruptions), len(interruptions)
        ),
        "time_to_stop_p50_ms": _round(p(stops, 50)),
        "time_to_stop_p95_ms": _round(p(stops, 95)),
        "premature_end_of_turn_rate": _rate(sum(v["premature"] for v in pauses), len(pauses)),
        "premature_all_turns_rate": _rate(sum(v["premature"] for v in turns), len(turns)),
        "unanswered_turn_rate": _rate(sum(not v["answered"] for v in turns), len(turns)),
        "end_of_turn_p50_ms": _round(p(eot, 50)),
        "end_of_turn_p95_ms": _round(p(eot, 95)),
        "end_of_turn_decision_p50_ms": _round(p(decisions, 50)),
        "end_of_turn_decision_p95_ms": _round(p(decisions, 95)),
        "stt_p50_ms": _round(p(stt, 50)),
        "wer": round(errors / ref, 4) if ref else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def score(items: Sequence[Item], observations: Sequence[Observation]) -> dict[str, Any]:
    """Verdicts per item, the totals, the totals per noise condition, the targets."""
    by_id = {i.id: i for i in items}
    verdicts = [judge(by_id[o.id], o) for o in observations]
    conditions: dict[str, Any] = {}
    for noise, snr in CONDITIONS:
        name = "clean" if snr is None else f"{noise} {snr:g} dB"
        chosen = [
            v
            for v, o in zip(verdicts, observations, strict=True)
            if (o.noise, o.snr_db) == (noise, snr)
        ]
        if chosen:
            conditions[name] = _summary(chosen)
    total = _summary(verdicts)
    targets = {}
    for metric, bound in TARGETS.items():
        value = total.get(metric)
        targets[metric] = {
            "target_max": bound["max"],
            "value": value,
            "met": value is not None and value <= bound["max"],
        }
    return {"total": total, "by_condition": conditions, "targets": targets, "items": verdicts}


# --- the run -------------------------------------------------------------------------


def _table(result: dict[str, Any]) -> str:
    cols = [
        ("false barge-in", "false_barge_in_rate", "%"),
        ("missed barge-in", "missed_barge_in_rate", "%"),
        ("stop p95 ms", "time_to_stop_p95_ms", ""),
        ("premature", "premature_end_of_turn_rate", "%"),
        ("EOT p50 ms", "end_of_turn_p50_ms", ""),
        ("EOT p95 ms", "end_of_turn_p95_ms", ""),
        ("decision p50", "end_of_turn_decision_p50_ms", ""),
        ("WER", "wer", "%"),
    ]

    def cell(value: Any, unit: str) -> str:
        if value is None:
            return "-"
        return f"{value * 100:.1f}%" if unit == "%" else f"{value:.0f}"

    header = f"{'condition':<16}" + "".join(f"{c[0]:>16}" for c in cols)
    lines = [header, "-" * len(header)]
    rows = [*result["by_condition"].items(), ("ALL", result["total"])]
    for name, summary in rows:
        lines.append(f"{name:<16}" + "".join(f"{cell(summary[k], u):>16}" for _, k, u in cols))
    lines.append("")
    for metric, t in result["targets"].items():
        mark = "met" if t["met"] else "NOT met"
        lines.append(f"target {metric} ≤ {t['target_max']}: {t['value']} → {mark}")
    return "\n".join(lines)


async def run(
    items: Sequence[Item], root: Path = CACHE, endpointing: Endpointing | None = None
) -> list[Observation]:
    times = RequestTimes()
    fake = FakeOpenAI(api_key="sk-bench-turn-taking", responder=times.responder)
    observations = []
    with serve(fake.app()) as srv:
        fake.url = f"{srv.url}/v1"
        async with httpx.AsyncClient() as http:
            llm = OpenAICompatibleLLM(
                provider="openai",
                model="gpt-4o-mini",
                api_key=fake.api_key,
                base_url=fake.url,
                http=http,
            )
            parts = Parts(
                http,
                llm,
                WhisperSTT(),
                PiperTTS(noise_scale=0.0, noise_w_scale=0.0),
                times,
                endpointing or Endpointing(),
            )
            for n, item in enumerate(items, start=1):
                obs = await run_item(item, item.pcm(root), parts)
                observations.append(obs)
                print(
                    f"[{n}/{len(items)}] {item.id:<36} interrupted={obs.interrupted!s:<5} "
                    f"requests={[round(t, 2) for t in obs.requests_s]} heard={obs.heard!r}",
                    flush=True,
                )
    return observations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N items")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--policy", choices=sorted(POLICIES), default="smart-turn")
    args = parser.parse_args()
    policy, endpointing = POLICIES[args.policy]

    silero_session()
    smart_turn.smart_turn_session()
    load_piper_voice("joe-us")
    load_whisper_model()
    items = asyncio.run(build())
    if args.limit is not None:
        items = items[:: max(1, len(items) // args.limit)][: args.limit]
    started, cpu = time.monotonic(), time.process_time()
    observations = asyncio.run(run(items, endpointing=endpointing))
    result = score(items, observations)
    model_cpu = [c for o in observations for c in o.turn_model_cpu_ms]
    print()
    print(_table(result))
    defaults = make_config(endpointing=endpointing)
    payload = {
        "benchmark": "turn_taking",
        "policy": policy,
        "configuration": {
            "endpointing": asdict(defaults.endpointing),
            "barge_in": asdict(defaults.barge_in),
            "stt": "local whisper (WhisperSTT defaults)",
            "tts": "piper joe-us",
            "llm": f"fake OpenAI server answering {ANSWER!r}",
            "agent_lead_s": AGENT_LEAD_S,
            "conditions": [{"noise": n, "snr_db": s} for n, s in CONDITIONS],
            "voices": sorted({i.voice for i in items}),
            "phone_path": "16k→8k soxr, 300-3400 Hz, G.711 μ-law, →16k",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "wall_s": round(time.monotonic() - started, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "noise_suppression_cpu_ms_per_call_second": (
            round(denoise.totals["cpu_s"] * 1000 / (denoise.totals["frames"] * 0.02), 1)
            if denoise.totals["frames"]
            else None
        ),
        "turn_model_cpu_ms": {
            "verdicts": len(model_cpu),
            "p50": _round(percentile(model_cpu, 50)),
            "p95": _round(percentile(model_cpu, 95)),
        },
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.policy != "baseline" and args.out.exists():
        document = json.loads(args.out.read_text())  # the baseline stays at the top level
        document[RESULT_KEYS[args.policy]] = payload
    else:
        document = payload
    args.out.write_text(json.dumps(document, indent=1, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
