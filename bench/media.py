"""Costs of the audio primitives and the offline speech engines on this machine.

Run: ``.venv/bin/python bench/media.py`` (under a minute). Prints the numbers
and writes ``bench/results/media.json``.

Targets (architecture notes, 2-core machine): G.711 2–8 µs per 20 ms frame;
resampling 5–14 µs per frame, QQ holding back < 1 ms; Silero ~0.2 ms per
32 ms chunk; Piper first audio 56–120 ms per sentence, RTF ~0.08; Whisper
0.46–0.72 s per utterance.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.speech makes the speech

from tests.speech import phone_line, speak  # noqa: E402

from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE  # noqa: E402
from flireo.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode  # noqa: E402
from flireo.media.resample import Resampler  # noqa: E402
from flireo.media.silero import CHUNK_SAMPLES, SileroStream  # noqa: E402
from flireo.media.vad import VoiceActivityDetector  # noqa: E402
from flireo.providers.stt.local_pocketsphinx import PocketsphinxSTT  # noqa: E402
from flireo.providers.stt.local_whisper import WhisperSTT, load_whisper_model  # noqa: E402
from flireo.providers.tts.local_piper import PiperTTS, load_piper_voice  # noqa: E402

SENTENCES = [
    "Hello.",
    "I would like to book an appointment for tomorrow morning.",
    "Can you transfer me to billing please?",
    "Thanks for calling. How can I help you today? We are open until five.",
]
RATE_PAIRS = [
    (8_000, 16_000),
    (16_000, 8_000),
    (22_050, 16_000),
    (24_000, 16_000),
    (16_000, 24_000),
]


def per_call_us(fn: Callable[[], object], repeat: int = 20_000) -> float:
    """Median over 5 runs of the mean time of one call, in µs."""
    fn()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        runs.append((time.perf_counter() - start) / repeat * 1e6)
    return round(statistics.median(runs), 2)


def bench_g711() -> dict[str, float]:
    t = np.arange(160) / 8_000
    frame = (np.sin(2 * np.pi * 440 * t) * 9_000).astype("<i2").tobytes()  # 20 ms at 8 kHz
    mu, a = ulaw_encode(frame), alaw_encode(frame)
    return {
        "ulaw_encode_us_per_frame": per_call_us(lambda: ulaw_encode(frame)),
        "ulaw_decode_us_per_frame": per_call_us(lambda: ulaw_decode(mu)),
        "alaw_encode_us_per_frame": per_call_us(lambda: alaw_encode(frame)),
        "alaw_decode_us_per_frame": per_call_us(lambda: alaw_decode(a)),
    }


def bench_resample() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for quality in ("QQ", "MQ"):
        for in_rate, out_rate in RATE_PAIRS:
            frame = bytes(in_rate * 20 // 1000 * 2)
            resampler = Resampler(in_rate, out_rate, quality)
            produced = sum(len(resampler.process(frame)) for _ in range(50)) // 2
            held_back = out_rate * 50 * 20 // 1000 - produced
            out[f"{quality}_{in_rate}_to_{out_rate}"] = {
                "us_per_frame": per_call_us(partial(resampler.process, frame)),
                "held_back_ms": round(held_back * 1000 / out_rate, 2),
            }
    return out


def run_vad(pcm: bytes, gate: bool) -> dict[str, float]:
    frames = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]
    costs = []
    for _ in range(3):
        vad = VoiceActivityDetector(gate=gate)
        start = time.perf_counter()
        for frame in frames:
            vad.process(frame)
        costs.append((time.perf_counter() - start) / len(frames) * 1e6)
    return {
        "us_per_frame": round(statistics.median(costs), 1),
        "silero_run_share": round(vad.chunks_run / (vad.chunks_run + vad.chunks_skipped), 3),
    }


async def bench_vad() -> dict[str, Any]:
    stream = SileroStream()
    chunk = np.zeros(CHUNK_SAMPLES, dtype=np.float32)
    speech = await speak(SENTENCES[1])
    silence = bytes(SAMPLE_RATE * 2 * 3)
    call = silence + speech + silence
    noise = np.random.default_rng(0).normal(0, 300, len(call) // 2)
    noisy = np.clip(np.frombuffer(call, dtype="<i2") + noise, -32768, 32767).astype("<i2")
    out: dict[str, Any] = {
        "silero_ms_per_chunk": round(
            per_call_us(lambda: stream.probability(chunk), 2_000) / 1000, 3
        )
    }
    for name, pcm in (("silence", silence * 3), ("call", call), ("call_noise", noisy.tobytes())):
        out[name] = {"gated": run_vad(pcm, True), "ungated": run_vad(pcm, False)}
    return out


def bench_loading() -> dict[str, float]:
    """Process-wide model loads, checksum included (first use in a process)."""
    out = {}
    for name, load in (
        ("piper_voice_s", load_piper_voice),
        ("whisper_model_s", load_whisper_model),
    ):
        start = time.perf_counter()
        load()
        out[name] = round(time.perf_counter() - start, 3)
    return out


async def bench_piper() -> dict[str, Any]:
    tts = PiperTTS()
    runs: list[dict[str, Any]] = []
    for text in SENTENCES:
        for _ in range(3):
            start = time.perf_counter()
            first = 0.0
            samples = 0
            rate = 1
            async for chunk in tts.synthesize(text):
                first = first or time.perf_counter() - start
                samples += len(chunk.pcm) // 2
                rate = chunk.sample_rate
            total = time.perf_counter() - start
            runs.append(
                {
                    "text": text,
                    "first_audio_ms": round(first * 1000, 1),
                    "rtf": round(total / (samples / rate), 3),
                }
            )
    return {
        "first_audio_ms_median": statistics.median(r["first_audio_ms"] for r in runs),
        "first_audio_ms_max": max(r["first_audio_ms"] for r in runs),
        "rtf_median": statistics.median(r["rtf"] for r in runs),
        "runs": runs,
    }


async def bench_whisper() -> dict[str, Any]:
    stt = WhisperSTT()
    times: dict[str, list[float]] = {"clean": [], "phone_8k_ulaw": [], "silence_gated": []}
    for text in SENTENCES[1:]:
        pcm = await speak(text)
        for name, audio in (("clean", pcm), ("phone_8k_ulaw", phone_line(pcm))):
            start = time.perf_counter()
            await stt.transcribe(audio)
            times[name].append(time.perf_counter() - start)
    for _ in range(3):
        start = time.perf_counter()
        await stt.transcribe(bytes(SAMPLE_RATE * 2 * 2))
        times["silence_gated"].append(time.perf_counter() - start)
    out: dict[str, Any] = {}
    for name, values in times.items():
        out[f"{name}_s_per_utterance"] = {
            "min": round(min(values), 3),
            "max": round(max(values), 3),
        }
    return out


async def bench_pocketsphinx() -> dict[str, Any]:
    pcm = await speak(SENTENCES[1])
    stream = await PocketsphinxSTT().open()
    start = time.perf_counter()
    for i in range(0, len(pcm), FRAME_BYTES):
        await stream.push(pcm[i : i + FRAME_BYTES])
        await asyncio.sleep(0)
    await stream.finalize()
    await stream.aclose()
    _ = [t async for t in stream.transcripts()]
    elapsed = time.perf_counter() - start
    seconds = len(pcm) / 2 / SAMPLE_RATE
    return {
        "ms_per_frame": round(elapsed / (len(pcm) // FRAME_BYTES) * 1000, 2),
        "rtf": round(elapsed / seconds, 3),
    }


async def main() -> None:
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model_load": bench_loading(),
        "g711": bench_g711(),
        "resample": bench_resample(),
        "vad": await bench_vad(),
        "piper": await bench_piper(),
        "whisper": await bench_whisper(),
        "pocketsphinx": await bench_pocketsphinx(),
    }
    text = json.dumps(results, indent=2)
    print(text)
    out = ROOT / "bench" / "results" / "media.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
