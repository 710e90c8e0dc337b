"""The call engine's own latency and CPU with many calls at once, vendors remote.

Run: ``.venv/bin/python bench/engine_latency.py`` (about two and a half minutes; ``--levels
10,50`` and ``--turns 2`` for a quick look). Prints the numbers and writes
``bench/results/engine_latency.json``.

N :class:`~flireo.engine.session.CallSession` run concurrently in this one
process over :class:`~flireo.engine.memory_transport.MemoryTransport` (paced
in real time, 20 ms frames). Everything of the platform is real: the VAD
(webrtcvad gate + Silero ONNX on the event loop), turn-taking, sentence
splitting, resampling, transcript, metrics, events. The vendors are fakes
behind the provider interfaces that only *wait* like a remote vendor
(``asyncio.sleep``) and produce synthetic text and audio, so no Whisper or
Piper CPU is counted. Each caller says a Piper-made question (made once,
before the clock starts) and waits for the whole answer, several turns.

Per caller turn:

- ``added_ms`` (the target): the engine's end-of-turn decision → first agent
  audio handed to the transport, minus the vendors' configured time (STT final
  + LLM until its first sentence is complete + TTS first byte). This is what
  the platform adds on top of the vendors.
- ``caller_gap_ms``: the last frame of the caller's clip → first agent frame
  played, as the caller hears it. It also holds the endpointing silence
  (0.4 s, counted by the VAD from where the voice stops inside the clip), the
  vendors and the 20 ms playout tick: compare it across levels, not with 0.

Also: event-loop lag (a probe sleeping 20 ms), CPU seconds per call
(``time.process_time`` over the level / N) and per call-second, and how many
such calls one core can carry (one core busy = 1 CPU second per wall second).
The CPU is the whole process's: the memory transport and the fakes (which only
sleep) are counted with the engine, so the figure is on the safe side.

Targets (issue "call engine"): added p95 ≤ 20 ms at 50 concurrent sessions;
≥ 100 concurrent sessions per core. The verdict takes the largest level whose
added p95 stays within 20 ms: it passes when that level ran ≥ 100 sessions at
once on less than one core, and ``sessions_per_core`` is that level's sessions
divided by the cores it kept busy. (A small level's CPU per session is mostly
the process's fixed cost, the probe and the collector, spread over few calls:
it is reported per level but says nothing of how many calls a core carries.)

This box is shared (other jobs' tests and benchmarks may run beside it), and a
descheduled process shows up as tens of milliseconds of "added" latency that is
not the engine's: the load average around each level, the loop lag and the
involuntary context switches are written with the numbers to tell. ``--priority
default,raised`` repeats the levels at ``nice -10`` (root only).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import re
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.speech makes the caller's question

from tests.speech import speak  # noqa: E402

from flireo.clock import SystemClock  # noqa: E402
from flireo.engine.config import CallInfo, PromptMessage, SessionConfig  # noqa: E402
from flireo.engine.events import SessionEvent, TurnCompleted  # noqa: E402
from flireo.engine.memory_transport import MemoryTransport  # noqa: E402
from flireo.engine.session import CallSession  # noqa: E402
from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE  # noqa: E402
from flireo.media.silero import silero_session  # noqa: E402
from flireo.providers.llm.base import (  # noqa: E402
    ChatMessage,
    Completion,
    LLMEvent,
    TextDelta,
    TokenUsage,
    ToolSpec,
)
from flireo.providers.stt.base import SpeechToTextStream, Transcript  # noqa: E402
from flireo.providers.tts.base import AudioChunk  # noqa: E402

QUESTION = "What are your opening hours?"
ANSWER = "Sure, we open at nine in the morning. Anything else I can do for you?"


@dataclass(frozen=True)
class VendorTimes:
    """How long the fake vendors take (a remote vendor's usual numbers)."""

    stt_final_ms: float = 150.0
    llm_first_token_ms: float = 250.0
    llm_token_ms: float = 20.0
    tts_first_byte_ms: float = 120.0
    #: synthetic speech length and the pace its chunks arrive (faster than real time)
    tts_ms_per_char: float = 60.0
    tts_chunk_ms: float = 100.0
    tts_chunk_every_ms: float = 20.0
    tts_rate: int = 24_000

    def tokens(self, text: str) -> list[str]:
        return re.findall(r"\s*\S+", text)

    def llm_first_sentence_ms(self, text: str) -> float:
        """Until the token after the first sentence's end (the splitter needs it)."""
        tokens = self.tokens(text)
        first = next(i for i, t in enumerate(tokens) if t.rstrip().endswith((".", "?", "!")))
        following = min(first + 1, len(tokens) - 1)
        return self.llm_first_token_ms + following * self.llm_token_ms

    def turn_ms(self, text: str) -> float:
        return self.stt_final_ms + self.llm_first_sentence_ms(text) + self.tts_first_byte_ms


# --- fake vendors: they only wait ------------------------------------------------


async def sleep_until(deadline: float) -> None:
    """Wait for a loop-clock deadline: like bytes from a remote vendor, later pieces
    do not drift by our own wake-up delays."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, deadline - loop.time()))


class WaitingSTTStream:
    """Per-utterance STT: the final comes ``stt_final_ms`` after the end of the turn."""

    def __init__(self, times: VendorTimes, text: str) -> None:
        self._times = times
        self._text = text
        self._out: asyncio.Queue[Transcript | None] = asyncio.Queue()
        self._pending: set[asyncio.Task[None]] = set()

    async def push(self, pcm: bytes) -> None:
        return None

    async def finalize(self) -> None:
        task = asyncio.create_task(self._final())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _final(self) -> None:
        start = asyncio.get_running_loop().time()
        await sleep_until(start + self._times.stt_final_ms / 1000)
        self._out.put_nowait(Transcript(self._text, is_final=True))

    async def transcripts(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            yield item

    async def aclose(self) -> None:
        for task in self._pending:
            task.cancel()
        self._out.put_nowait(None)


class WaitingSTT:
    provider = "bench-stt"
    utterance_based = True

    def __init__(self, times: VendorTimes) -> None:
        self._times = times

    async def open(
        self, *, language: str | None = None, keyterms: Sequence[str] = ()
    ) -> SpeechToTextStream:
        return WaitingSTTStream(self._times, QUESTION)


class WaitingLLM:
    provider = "bench-llm"
    model = "bench"

    def __init__(self, times: VendorTimes) -> None:
        self._times = times

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
    ) -> AsyncIterator[LLMEvent]:
        times = self._times
        tokens = times.tokens(ANSWER)
        start = asyncio.get_running_loop().time() + times.llm_first_token_ms / 1000
        for i, token in enumerate(tokens):
            await sleep_until(start + i * times.llm_token_ms / 1000)
            yield TextDelta(token)
        yield Completion("stop", TokenUsage(len(messages) * 20, len(tokens)))


class WaitingTTS:
    provider = "bench-tts"
    voice = "bench"

    def __init__(self, times: VendorTimes) -> None:
        self._times = times
        t = np.arange(int(times.tts_rate * times.tts_chunk_ms / 1000)) / times.tts_rate
        self._chunk = (np.sin(2 * np.pi * 220 * t) * 6000).astype("<i2").tobytes()

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        times = self._times
        chunks = max(1, round(len(text) * times.tts_ms_per_char / times.tts_chunk_ms))
        start = asyncio.get_running_loop().time() + times.tts_first_byte_ms / 1000
        for i in range(chunks):
            await sleep_until(start + i * times.tts_chunk_every_ms / 1000)
            yield AudioChunk(self._chunk, times.tts_rate)

    async def aclose(self) -> None:
        return None


# --- one caller ------------------------------------------------------------------


class CallerTransport(MemoryTransport):
    """Notes when the caller's last speech frame of each turn reached the engine, and
    when the next agent frame was played (no per-frame log: it would feed the GC)."""

    def __init__(self, clock: SystemClock) -> None:
        super().__init__(clock, record=False)
        self._last_speech: bytes | None = None
        self._waiting_reply = False
        self.speech_ends: list[float] = []
        self.replies_played: list[float] = []

    def push_question(self, speech: bytes, pause_s: float) -> None:
        frames = [speech[i : i + FRAME_BYTES] for i in range(0, len(speech), FRAME_BYTES)]
        frames[-1] = frames[-1].ljust(FRAME_BYTES, b"\0")
        self._last_speech = frames[-1] = bytes(bytearray(frames[-1]))  # a unique object
        self._in.extend(frames)
        self.push_caller_audio(bytes(int(SAMPLE_RATE * pause_s) * 2))

    def _play_frame(self) -> None:
        before = self.played_samples
        super()._play_frame()
        if self._waiting_reply and self.played_samples > before:
            self.replies_played.append(self._clock.monotonic())
            self._waiting_reply = False

    def _caller_frame(self) -> bytes:
        frame = super()._caller_frame()
        if frame is self._last_speech:
            self.speech_ends.append(self._clock.monotonic())
            self._last_speech = None
            self._waiting_reply = True
        return frame


class TurnSink:
    def __init__(self) -> None:
        self.turns: list[TurnCompleted] = []
        self.changed = asyncio.Event()

    async def emit(self, event: SessionEvent) -> None:
        if isinstance(event, TurnCompleted):
            self.turns.append(event)
            self.changed.set()


@dataclass
class TurnResult:
    added_ms: float
    caller_gap_ms: float


@dataclass
class CallResult:
    turns: list[TurnResult] = field(default_factory=list)
    seconds: float = 0.0
    ended_reason: str = ""


async def one_call(
    n: int,
    *,
    turns: int,
    speech: bytes,
    times: VendorTimes,
    http: httpx.AsyncClient,
    start_delay: float,
) -> CallResult:
    await asyncio.sleep(start_delay)
    clock = SystemClock()
    transport = CallerTransport(clock)
    sink = TurnSink()
    config = SessionConfig(
        call=CallInfo(call_id=f"bench-{n}"),
        messages=(PromptMessage("system", "You are a receptionist."),),
        first_message="Hello.",
    )
    session = CallSession(
        config,
        transport=transport,
        clock=clock,
        http=http,
        events=sink,
        stt=WaitingSTT(times),
        llm=WaitingLLM(times),
        tts=WaitingTTS(times),
    )
    started = clock.monotonic()
    task = asyncio.create_task(session.run())
    result = CallResult()
    vendor_ms = times.turn_ms(ANSWER)

    async def turns_reach(count: int) -> None:
        while len(sink.turns) < count:
            sink.changed.clear()
            await sink.changed.wait()

    await turns_reach(1)  # the greeting was said
    for turn in range(turns):
        transport.push_question(speech, pause_s=0.8)
        await turns_reach(turn + 2)
        metrics = sink.turns[-1].metrics
        if metrics.trigger != "user" or metrics.first_audio_ms is None:
            raise RuntimeError(f"call {n}: unexpected turn {metrics}")
        gap = transport.replies_played[turn] - transport.speech_ends[turn]
        result.turns.append(
            TurnResult(added_ms=metrics.first_audio_ms - vendor_ms, caller_gap_ms=gap * 1000)
        )
    transport.remote_hangup()
    outcome = await task
    result.seconds = clock.monotonic() - started
    result.ended_reason = outcome.ended_reason
    return result


async def loop_lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    """How late a 20 ms timer fires (the loop's own delay, or the OS not running us)."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.02)
        samples.append((time.perf_counter() - before - 0.02) * 1000)


class GcPauses:
    """Stop-the-world garbage collections while a level runs (ms, generation 2 only)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif info["generation"] == 2:
            self.pauses.append((time.perf_counter() - self._start) * 1000)


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[k], 1)


def spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": round(max(values), 1),
        "mean": round(statistics.fmean(values), 1),
    }


async def run_level(
    sessions: int, *, turns: int, speech: bytes, times: VendorTimes, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    lag: list[float] = []
    stop = asyncio.Event()
    gc.collect()
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    load_before = os.getloadavg()[0]
    switches0 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    async with httpx.AsyncClient() as http:
        probe = asyncio.create_task(loop_lag_probe(lag, stop))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(
            *(
                one_call(
                    n,
                    turns=turns,
                    speech=speech,
                    times=times,
                    http=http,
                    start_delay=rng.uniform(0, 2.0),  # calls arrive spread over 2 s
                )
                for n in range(sessions)
            )
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stop.set()
        await probe
    gc.callbacks.remove(pauses)
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches0
    added = [t.added_ms for r in results for t in r.turns]
    gap = [t.caller_gap_ms for r in results for t in r.turns]
    call_seconds = sum(r.seconds for r in results)
    cpu_per_call_second = cpu / call_seconds
    reasons = sorted({r.ended_reason for r in results})
    return {
        "sessions": sessions,
        "turns_measured": len(added),
        "added_ms": spread(added),
        "caller_gap_ms": spread(gap),
        "loop_lag_ms": spread(lag),
        "gc_gen2_pauses_ms": [round(x, 1) for x in sorted(pauses.pauses)[-3:]],
        "involuntary_context_switches": switches,
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_call": round(cpu / sessions, 3),
        "mean_call_s": round(call_seconds / sessions, 1),
        "cpu_ms_per_call_second": round(cpu_per_call_second * 1000, 2),
        "cores_busy": round(cpu / wall, 2),
        "sessions_per_core": int(1 / cpu_per_call_second),
        "ended_reasons": reasons,
    }


async def run_levels(
    levels: list[int], *, turns: int, speech: bytes, times: VendorTimes, label: str
) -> list[dict[str, Any]]:
    out = []
    for i, sessions in enumerate(levels):
        level = await run_level(sessions, turns=turns, speech=speech, times=times, seed=i)
        out.append(level)
        a, gap = level["added_ms"], level["caller_gap_ms"]
        print(
            f"[{label}] {sessions:4d} sessions: added p50 {a['p50']} p95 {a['p95']} "
            f"p99 {a['p99']} ms | caller gap p50 {gap['p50']} p95 {gap['p95']} ms | "
            f"loop lag p99 {level['loop_lag_ms']['p99']} ms | CPU {level['cpu_s_per_call']} "
            f"s/call, {level['cpu_ms_per_call_second']} ms per call-second → "
            f"{level['sessions_per_core']} sessions/core | load {level['load_avg_1min']}",
            flush=True,
        )
    return out


def verdict(levels: list[dict[str, Any]]) -> dict[str, Any]:
    at50 = next((lv for lv in levels if lv["sessions"] == 50), None)
    within = [lv for lv in levels if lv["added_ms"]["p95"] <= 20.0]
    carried = max(within, key=lambda lv: lv["sessions"], default=None)
    return {
        "added_p95_ms_at_50": at50["added_ms"]["p95"] if at50 else None,
        "added_p95_ok": bool(at50 and at50["added_ms"]["p95"] <= 20.0),
        # the most sessions run at once within the latency target, and the cores they used
        "max_sessions_within_target": carried["sessions"] if carried else None,
        "cores_busy_at_max": carried["cores_busy"] if carried else None,
        "sessions_per_core": (
            int(carried["sessions"] / carried["cores_busy"]) if carried else None
        ),
        "sessions_per_core_ok": bool(
            carried and carried["sessions"] >= 100 and carried["cores_busy"] < 1.0
        ),
    }


def raise_priority(step: int = -10) -> int | None:
    """Renice this process (root only); the niceness now, or None when not allowed."""
    try:
        return os.nice(step)
    except PermissionError:
        return None


async def main(levels: list[int], turns: int, priorities: list[str]) -> dict[str, Any]:
    times = VendorTimes()
    silero_session()  # load the VAD model before the clock starts
    speech = await speak(QUESTION)
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "vendors": {
            "stt_final_ms": times.stt_final_ms,
            "llm_first_token_ms": times.llm_first_token_ms,
            "llm_token_ms": times.llm_token_ms,
            "llm_first_sentence_ms": times.llm_first_sentence_ms(ANSWER),
            "tts_first_byte_ms": times.tts_first_byte_ms,
            "tts_sample_rate": times.tts_rate,
            "vendor_ms_per_turn": times.turn_ms(ANSWER),
        },
        "caller": {"question_s": round(len(speech) / (SAMPLE_RATE * 2), 2), "turns": turns},
        "targets": {"added_p95_ms_at_50": 20.0, "sessions_per_core": 100},
        "runs": [],
    }
    # warm up (first model runs, imports, connection set-up), not measured
    await run_level(3, turns=1, speech=speech, times=times, seed=99)
    for priority in priorities:
        if priority == "raised":
            niceness = raise_priority()
            if niceness is None:
                print("cannot raise the priority (not root): skipped")
                continue
        else:
            niceness = os.nice(0)
        measured = await run_levels(levels, turns=turns, speech=speech, times=times, label=priority)
        report["runs"].append(
            {
                "priority": priority,
                "niceness": niceness,
                "levels": measured,
                "verdict": verdict(measured),
            }
        )
        print(json.dumps({priority: report["runs"][-1]["verdict"]}))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="10,50,100,200", help="concurrent sessions per level")
    parser.add_argument("--turns", type=int, default=4, help="caller turns per call")
    parser.add_argument(
        "--out", default=str(ROOT / "bench" / "results" / "engine_latency.json"), help="JSON path"
    )
    parser.add_argument(
        "--priority",
        default="default",
        help="runs in order: 'default' and/or 'raised' (nice -10, root only)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    result = asyncio.run(
        main(
            [int(x) for x in args.levels.split(",")],
            args.turns,
            [p.strip() for p in args.priority.split(",") if p.strip()],
        )
    )
    if not args.no_write:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
