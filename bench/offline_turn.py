"""Offline speech under load: local Whisper + local Piper for N concurrent calls on this box.

Run: ``nice -n 10 .venv/bin/python bench/offline_turn.py`` (about four minutes;
``--levels 1,4 --turns 3`` for a quick look; ``--label after`` names the run).
Prints the numbers and writes (merges into) ``bench/results/offline_turn.json``
under the run's label, so a "before" and an "after" run sit side by side.

Each simulated call does what a live call does to the local speech providers,
through their public interfaces only (no LLM):

1. The caller's line is a Piper-made sentence (made before the clock starts)
   put through the phone path the calls see: 16 kHz → 8 kHz → G.711 μ-law →
   8 kHz PCM → 16 kHz, with the live path's streaming resamplers.
2. It is pushed in 20 ms frames, paced in real time, into a
   :class:`~flireo.providers.stt.local_whisper.WhisperSTT` stream the way
   :class:`~flireo.engine.turns.TurnTaker` does for a per-utterance STT: the
   pre-roll (400 ms before the onset), the speech, then the endpointing
   silence (``Endpointing.silence_s`` = 0.4 s) plus the VAD's own hang-over
   (``--vad-lag-ms``, 100 ms by default), after which the turn is over and
   the stream is finalized.
3. When the final transcript arrives, the fixed reply (two sentences) is
   synthesized with :class:`~flireo.providers.tts.local_piper.PiperTTS`; the
   first chunk is the first agent audio. The rest of the reply is still
   synthesized (it costs CPU in a real call too), and the caller waits while
   the agent "speaks" before the next turn.

Per caller turn:

- ``turn_ms`` (the target): end of turn (the stream finalized) → first agent
  audio from Piper. This is what Whisper + Piper add once the turn detector
  has decided; the issue's target is p50 ≤ 900 ms at 4 concurrent calls.
- ``stt_ms``: end of turn → final transcript.
- ``tts_first_ms``: final transcript → first Piper audio.
- ``speech_end_to_audio_ms``: the caller's last speech frame → first agent
  audio, so it also holds the endpointing silence and VAD lag (0.5 s here).

Calls start staggered over one turn's length (seeded), as real calls do, so
turns do not all end in the same 20 ms. Also: CPU seconds over wall seconds
(cores kept busy), load average around each level, WER over all turns.

The machine is shared with other helpers' tests and benchmarks: the load
average before and after each level is written with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE
from flireo.media.g711 import ulaw_decode, ulaw_encode
from flireo.media.resample import Resampler, resample_all
from flireo.providers.stt.base import SpeechToTextStream, Transcript
from flireo.providers.stt.local_whisper import WhisperSTT, load_whisper_model
from flireo.providers.tts.local_piper import PiperTTS, load_piper_voice

RESULTS = Path(__file__).resolve().parent / "results" / "offline_turn.json"
FRAME_S = 0.020
PREROLL_S = 0.4
SILENCE_S = 0.4  # Endpointing.silence_s
REPLY = "Sure, I can help with that. Let me check what we have for you."
TARGET_P50_MS = 900.0
TARGET_LEVEL = 4

CALLER_LINES = [
    "I would like to book an appointment for tomorrow morning.",
    "Yes, please.",
    "Can you transfer me to billing?",
    "My account number is four five six seven.",
    "What time do you open on Saturday?",
    "No, I meant next Tuesday, not this one.",
    "I need to cancel my order from last week because it arrived broken.",
    "Okay, thank you very much.",
    "Is there a pharmacy near the main station?",
    "Could you send me the invoice by email instead of by post?",
]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


def words(text: str) -> list[str]:
    return [
        _NUMBERS[int(w)] if w.isdigit() and int(w) < len(_NUMBERS) else w
        for w in _WORD.findall(text.lower())
    ]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def phone_line(pcm16k: bytes) -> bytes:
    """16 kHz → 8 kHz → μ-law → PCM → 16 kHz through the live path's streaming resamplers."""
    down, up = Resampler(SAMPLE_RATE, 8_000), Resampler(8_000, SAMPLE_RATE)
    narrow = b"".join(
        down.process(pcm16k[i : i + FRAME_BYTES]) for i in range(0, len(pcm16k), FRAME_BYTES)
    )
    line = ulaw_decode(ulaw_encode(narrow + down.flush()))
    return up.process(line) + up.flush()


async def make_lines(tts: PiperTTS) -> list[bytes]:
    lines = []
    for text in CALLER_LINES:
        parts = [
            resample_all(chunk.pcm, chunk.sample_rate, SAMPLE_RATE)
            async for chunk in tts.synthesize(text)
        ]
        lines.append(phone_line(b"".join(parts)))
    return lines


def frames(pcm: bytes) -> list[bytes]:
    out = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    if out and len(out[-1]) < FRAME_BYTES:
        out[-1] = out[-1] + bytes(FRAME_BYTES - len(out[-1]))
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Turn:
    call: int
    line: int
    speech_end: float
    turn_end: float = 0.0
    final_at: float = 0.0
    first_audio_at: float = 0.0
    text: str = ""


@dataclass
class Level:
    calls: int
    turns: list[Turn] = field(default_factory=list)


class Pacer:
    """Pushes frames at 20 ms intervals of wall time (catching up after a late wake)."""

    def __init__(self) -> None:
        self.next = time.perf_counter()

    async def tick(self) -> None:
        self.next += FRAME_S
        delay = self.next - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def run_call(
    index: int,
    stt: WhisperSTT,
    tts: PiperTTS,
    lines: list[bytes],
    order: list[int],
    start_delay: float,
    vad_lag_s: float,
    level: Level,
) -> None:
    await asyncio.sleep(start_delay)
    stream: SpeechToTextStream = await stt.open(language="en")
    finals: asyncio.Queue[Transcript] = asyncio.Queue()

    async def read() -> None:
        async for transcript in stream.transcripts():
            if transcript.is_final:
                finals.put_nowait(transcript)

    reader = asyncio.create_task(read())
    silence = bytes(FRAME_BYTES)
    try:
        for line_index in order:
            pacer = Pacer()
            for _ in range(round(PREROLL_S / FRAME_S)):
                await stream.push(silence)
                await pacer.tick()
            for frame in frames(lines[line_index]):
                await stream.push(frame)
                await pacer.tick()
            turn = Turn(call=index, line=line_index, speech_end=time.perf_counter())
            for _ in range(round((SILENCE_S + vad_lag_s) / FRAME_S)):
                await stream.push(silence)
                await pacer.tick()
            turn.turn_end = time.perf_counter()
            await stream.finalize()
            final = await finals.get()
            turn.final_at = time.perf_counter()
            turn.text = final.text
            reply = tts.synthesize(REPLY)
            spoken = 0
            async for chunk in reply:
                if not spoken:
                    turn.first_audio_at = time.perf_counter()
                spoken += len(chunk.pcm) // 2 / chunk.sample_rate
            level.turns.append(turn)
            # the caller listens while the agent speaks (what is left of the reply)
            remaining = spoken - (time.perf_counter() - turn.first_audio_at)
            await asyncio.sleep(max(0.5, remaining))
    finally:
        await stream.aclose()
        await reader


def summarize(level: Level, wall: float, cpu: float, load: tuple[float, float]) -> dict[str, Any]:
    turns = level.turns
    turn_ms = [(t.first_audio_at - t.turn_end) * 1000 for t in turns]
    stt_ms = [(t.final_at - t.turn_end) * 1000 for t in turns]
    tts_ms = [(t.first_audio_at - t.final_at) * 1000 for t in turns]
    gap_ms = [(t.first_audio_at - t.speech_end) * 1000 for t in turns]
    errors = sum(edit_distance(words(CALLER_LINES[t.line]), words(t.text)) for t in turns)
    ref_words = sum(len(words(CALLER_LINES[t.line])) for t in turns)

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "p50": round(pct(values, 0.5), 1),
            "p95": round(pct(values, 0.95), 1),
            "max": round(max(values), 1),
            "mean": round(statistics.fmean(values), 1),
        }

    return {
        "calls": level.calls,
        "turns": len(turns),
        "turn_ms": stats(turn_ms),
        "stt_ms": stats(stt_ms),
        "tts_first_ms": stats(tts_ms),
        "speech_end_to_audio_ms": stats(gap_ms),
        "wer": round(errors / ref_words, 4) if ref_words else None,
        "wrong_turns": sum(words(CALLER_LINES[t.line]) != words(t.text) for t in turns),
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "cores_busy": round(cpu / wall, 2),
        "loadavg_before": load[0],
        "loadavg_after": load[1],
    }


async def run_level(
    calls: int,
    turns: int,
    stt: WhisperSTT,
    tts: PiperTTS,
    lines: list[bytes],
    vad_lag_s: float,
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed * 1000 + calls)
    level = Level(calls=calls)
    cycle = statistics.fmean(len(line) / (SAMPLE_RATE * 2) for line in lines) + 3.0
    tasks = []
    for call in range(calls):
        order = [rng.randrange(len(lines)) for _ in range(turns)]
        delay = 0.0 if call == 0 else rng.uniform(0, cycle)
        tasks.append(run_call(call, stt, tts, lines, order, delay, vad_lag_s, level))
    counters = ("decoded", "speculation_hits", "fallbacks")
    before = {name: getattr(stt, name, None) for name in counters}
    load_before = round(os.getloadavg()[0], 2)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*tasks)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    summary = summarize(level, wall, cpu, (load_before, round(os.getloadavg()[0], 2)))
    for name, start in before.items():
        if isinstance(start, int):  # the provider counts its work (after the issue-15 change)
            summary[f"whisper_{name}"] = getattr(stt, name) - start
    return summary


def describe_code() -> dict[str, Any]:
    import flireo.providers.stt.local_whisper as lw

    described: dict[str, Any] = {"stt": "flireo.providers.stt.local_whisper.WhisperSTT()"}
    for name in (
        "WHISPER_THREADS",
        "WHISPER_WORKERS",
        "ENCODER_SECONDS",
        "SPECULATE_AFTER_MS",
        "SPEECH_PAD_S",
    ):
        if hasattr(lw, name):
            described[name] = getattr(lw, name)
    from flireo.media import cpu

    described["cpu_workers"] = cpu.cpu_workers()
    try:
        import subprocess

        described["git_head"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except OSError:
        pass
    return described


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1,2,4,6")
    parser.add_argument("--turns", type=int, default=6, help="caller turns per call")
    parser.add_argument("--vad-lag-ms", type=int, default=100)
    parser.add_argument("--label", default="after", help="key in the results file")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]

    load_whisper_model()
    load_piper_voice("joe-us")
    tts = PiperTTS()
    lines = await make_lines(PiperTTS(noise_scale=0.0, noise_w_scale=0.0))
    stt = WhisperSTT()
    # warm both models once (first-run allocations are not what a live call sees)
    warm = await stt.open(language="en")
    await warm.push(lines[0])
    await warm.finalize()
    await warm.aclose()
    _ = [t async for t in warm.transcripts()]
    _ = [c async for c in tts.synthesize(REPLY)]

    results: list[dict[str, Any]] = []
    for calls in levels:
        summary = await run_level(
            calls, args.turns, stt, tts, lines, args.vad_lag_ms / 1000, args.seed
        )
        results.append(summary)
        print(
            f"{calls} calls: turn p50 {summary['turn_ms']['p50']:.0f} ms "
            f"p95 {summary['turn_ms']['p95']:.0f} ms | stt p50 {summary['stt_ms']['p50']:.0f} "
            f"p95 {summary['stt_ms']['p95']:.0f} | tts first p50 "
            f"{summary['tts_first_ms']['p50']:.0f} p95 {summary['tts_first_ms']['p95']:.0f} | "
            f"WER {summary['wer']:.3f} | cores busy {summary['cores_busy']:.2f} | "
            f"load {summary['loadavg_before']}→{summary['loadavg_after']}"
            + (
                f" | whisper runs {summary['whisper_decoded']}, speculation hits "
                f"{summary['whisper_speculation_hits']}, fallbacks {summary['whisper_fallbacks']}"
                if "whisper_decoded" in summary
                else ""
            ),
            flush=True,
        )

    target = next((r for r in results if r["calls"] == TARGET_LEVEL), None)
    run = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "nice": os.nice(0),
            "shared": (
                "yes: other helpers' tests and benchmarks ran on the same 2 cores during the "
                "run; see loadavg_before/after per level (2.0 = both cores busy before this "
                "process adds anything)"
            ),
        },
        "code": describe_code(),
        "setup": {
            "turns_per_call": args.turns,
            "preroll_s": PREROLL_S,
            "endpointing_silence_s": SILENCE_S,
            "vad_lag_ms": args.vad_lag_ms,
            "reply": REPLY,
            "caller_lines": CALLER_LINES,
            "phone_path": "16 kHz → 8 kHz → G.711 μ-law → 16 kHz (streaming soxr)",
        },
        "levels": results,
        "target": {
            "metric": f"turn_ms p50 at {TARGET_LEVEL} concurrent calls",
            "limit_ms": TARGET_P50_MS,
            "measured_ms": target["turn_ms"]["p50"] if target else None,
            "passed": bool(target and target["turn_ms"]["p50"] <= TARGET_P50_MS),
        },
    }
    if not args.no_write:
        existing: dict[str, Any] = {}
        if RESULTS.exists():
            existing = json.loads(RESULTS.read_text(encoding="utf-8"))
        existing.setdefault(
            "about",
            "Offline turn latency (local Whisper STT + local Piper TTS, no LLM) with N "
            "concurrent simulated calls; see bench/offline_turn.py for what is measured.",
        )
        existing[args.label] = run
        RESULTS.write_text(json.dumps(existing, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {RESULTS} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
