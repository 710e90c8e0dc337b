"""What recording costs a call: CPU on the event loop and in the worker, and memory.

Time is simulated: a clock whose ``sleep`` jumps ahead, so the shared 20 ms
pacer ticks as fast as the machine can run it, and every number is counted per
*call-second* (20 ms ticks × 50) rather than per wall second.

1. **The media path with and without recording.** ``calls`` real
   :class:`RtpSession` pairs on loopback (ours and a far end playing the
   caller), ticked by the shared pacer: both sides talk (16 kHz → 8 kHz → μ-law,
   sockets, jitter buffer, decode, 8 → 16 kHz). The same calls run unrecorded,
   then with a :class:`CallRecorder` (WAV) attached to our side of each.
   Reported: the loop's CPU per call-second for our side (half the pair: the far
   end stands in for the carrier), the loop CPU the recorder added (the
   difference of the two runs, noisy on a shared machine, and the recorder's own
   loop work timed alone, see 2), the worker's CPU, and RSS growth per call.
2. **The recorder alone, 10-minute calls.** ``on_tick`` fed fresh frames (as the
   jitter buffer hands out) for 30,000 ticks per call, at 1 and 100 concurrent
   calls, against the same loop without the recorder: its loop CPU per
   call-second (what it adds to the tick), the worker's CPU (joining, writing,
   the mono mix; Opus for ``ogg``), the time ``finish()`` takes, and RSS growth
   per call while the calls run (peak over the start).

Targets (issue 11): added loop CPU ≤ 3 % of the same calls unrecorded, RSS growth
≤ 2 MB per 10-minute call.

The media-path runs alternate (unrecorded, recorded) ``--repeat`` times and
keep the least CPU of each kind: this 2-core machine is shared, and other
programs' bursts only ever add to a run.

Run: ``.venv/bin/python bench/recording.py`` (about two minutes on a quiet machine,
most of it the worker writing 100 × 10 minutes of WAV, 5.8 GB, removed at the
end; ``--quick`` for a short check). Prints the numbers and writes ``bench/results/recording.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE  # noqa: E402
from flireo.recordings.capture import CallRecorder, RecordingFormat  # noqa: E402
from flireo.telephony.media_transport import SipMediaTransport  # noqa: E402
from flireo.telephony.rtp.session import RtpSession  # noqa: E402

TICKS_PER_S = 50
TEN_MINUTES_TICKS = 10 * 60 * TICKS_PER_S
LOOP_TARGET_PCT = 3.0
RSS_TARGET_MB = 2.0


class FastClock:
    """Simulated time: ``sleep`` jumps ahead at once (and yields to the loop)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def speech(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 220 * t) * 6000 + rng.normal(0, 800, t.size)
    return bytes(tone.clip(-32000, 32000).astype("<i2").tobytes())


async def noop() -> None:
    return None


async def no_transfer(_destination: str) -> Any:
    raise RuntimeError("no transfer in the benchmark")


# --- 1. the media path ---------------------------------------------------------------------
async def media_run(calls: int, seconds: float, record: bool, work_dir: Path) -> dict[str, Any]:
    clock = FastClock()
    ticks = int(seconds * TICKS_PER_S)
    pairs: list[tuple[RtpSession, RtpSession, SipMediaTransport]] = []
    for _ in range(calls):
        ours = RtpSession(local_host="127.0.0.1", clock=clock, jitter_ms=40)  # type: ignore[arg-type]
        far = RtpSession(local_host="127.0.0.1", clock=clock, jitter_ms=40)  # type: ignore[arg-type]
        ours_port, far_port = await ours.bind(), await far.bind()
        ours.set_remote("127.0.0.1", far_port)
        far.set_remote("127.0.0.1", ours_port)
        transport = SipMediaTransport(ours, on_hangup=noop, on_transfer=no_transfer)
        pairs.append((ours, far, transport))
    heard = [0] * calls

    def sink(i: int) -> Callable[[bytes], None]:
        def take(frame: bytes) -> None:
            heard[i] += 1

        return take

    listeners = [asyncio.create_task(t.listen(sink(i))) for i, (_, _, t) in enumerate(pairs)]
    recorders: list[CallRecorder] = []
    if record:
        for i, (_, _, transport) in enumerate(pairs):
            recorder = CallRecorder(format="wav", work_dir=work_dir, name=f"media-{i}")
            transport.attach_recorder(recorder)
            recorders.append(recorder)
    # both sides talk all the time (the worst case for the send path); queued up front
    agent, caller = speech(seconds + 1, 1), speech(seconds + 1, 2)
    for ours, far, _ in pairs:
        await ours.send(agent)
        await far.send(caller)
    await asyncio.sleep(0)
    gc.collect()
    rss0 = rss_mb()
    peak = rss0
    loop0, proc0 = time.thread_time(), time.process_time()
    for ours, far, _ in pairs:
        ours.start()
        far.start()
    start_t = clock.t
    end_t = start_t + ticks / TICKS_PER_S
    while clock.t < end_t:
        await asyncio.sleep(0.05)  # real time: the pacer runs flat out meanwhile
        peak = max(peak, rss_mb())
    for ours, far, _ in pairs:
        ours.close()
        far.close()
    await asyncio.gather(*listeners)
    loop_cpu = time.thread_time() - loop0
    finish_wall = 0.0
    if recorders:
        t0 = time.perf_counter()
        done = await asyncio.gather(*(r.finish() for r in recorders))
        finish_wall = time.perf_counter() - t0
        for audio in done:
            if audio is not None:
                audio.cleanup()
    worker_cpu = (time.process_time() - proc0) - (time.thread_time() - loop0)
    simulated = (clock.t - start_t) * calls  # call-seconds
    return {
        "calls": calls,
        "simulated_call_seconds": round(simulated, 1),
        "recorded": record,
        "frames_heard_per_call": round(sum(heard) / calls),
        # both sessions of a pair run on this loop; our side is half of it
        "loop_cpu_ms_per_call_second_ours": round(loop_cpu / simulated / 2 * 1000, 4),
        "worker_cpu_ms_per_call_second": round(worker_cpu / simulated * 1000, 4),
        "rss_growth_mb_per_call": round((peak - rss0) / calls, 3),
        "finish_wall_s": round(finish_wall, 3),
    }


# --- 2. the recorder alone -------------------------------------------------------------------
async def recorder_run(
    calls: int, ticks: int, record: bool, format: RecordingFormat, work_dir: Path
) -> dict[str, Any]:
    """``ticks`` ticks of ``calls`` calls, fed as the pacer does: fresh frames each tick
    (the jitter buffer makes a new one; the agent talks half of the time)."""
    rx_template = speech(1.0, 3)[:FRAME_BYTES]
    tx_template = speech(1.0, 4)[:FRAME_BYTES]
    recorders = [
        CallRecorder(format=format, work_dir=work_dir, name=f"alone-{format}-{i}")
        for i in range(calls)
    ]
    sink: list[bytes] = []
    gc.collect()
    rss0 = rss_mb()
    peak = rss0
    loop_cpu = 0.0  # the ticks' own CPU, not the waits below
    proc0 = time.process_time()
    wait_cpu = 0.0
    loop0 = time.thread_time()
    for k in range(ticks):
        talking = (k // 250) % 2 == 0  # 5 s on, 5 s off
        for recorder in recorders:
            received = bytes(bytearray(rx_template))  # a new object, as Playout.tick() makes
            sent = bytes(bytearray(tx_template)) if talking else None
            if record:
                recorder.on_tick(received, sent)
            else:
                sink.append(received)  # the engine's sink takes the frame
                sink.clear()
        if k % TICKS_PER_S == 0:
            loop_cpu += time.thread_time() - loop0
            await asyncio.sleep(0)  # the loop turns (worker callbacks); a second went by
            waited = time.thread_time()
            if k % (10 * TICKS_PER_S) == 0:
                peak = max(peak, rss_mb())
            # simulated time runs far ahead of real time: let the worker keep up, as it
            # does in a real call (else the backlog bound turns chunks into silence)
            while record and any(r.backlog > 2 for r in recorders):  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            loop0 = time.thread_time()
            wait_cpu += loop0 - waited
    loop_cpu += time.thread_time() - loop0
    peak = max(peak, rss_mb())
    t0 = time.perf_counter()
    finished = await asyncio.gather(*(r.finish() for r in recorders)) if record else []
    finish_wall = time.perf_counter() - t0
    peak_after = max(peak, rss_mb())
    worker_cpu = time.process_time() - proc0 - loop_cpu - wait_cpu
    sizes = [a.stereo_path.stat().st_size + a.mono_path.stat().st_size for a in finished if a]
    durations = [a.duration_s for a in finished if a]
    for audio in finished:
        if audio is not None:
            audio.cleanup()
    call_seconds = calls * ticks / TICKS_PER_S
    return {
        "calls": calls,
        "format": format,
        "recorded": record,
        "call_seconds": call_seconds,
        "loop_cpu_ms_per_call_second": round(loop_cpu / call_seconds * 1000, 4),
        "worker_cpu_ms_per_call_second": round(worker_cpu / call_seconds * 1000, 4),
        "finish_wall_s": round(finish_wall, 3),
        "rss_growth_mb_per_call": round((peak - rss0) / calls, 3),
        "rss_growth_mb_per_call_incl_finish": round((peak_after - rss0) / calls, 3),
        "file_mb_per_call": round(sum(sizes) / max(1, len(sizes)) / 1e6, 2) if sizes else 0,
        "dropped_frames": sum(r.dropped_frames for r in recorders),
        "duration_s": durations[0] if durations else 0,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    work_dir = Path(tempfile.mkdtemp(prefix="flireo-rec-bench-"))
    try:
        ticks = 3000 if args.quick else TEN_MINUTES_TICKS
        media_seconds = {1: 20.0 if args.quick else 60.0, 100: 2.0 if args.quick else 4.0}
        # warm up (imports, numpy, the worker threads, the soxr and PyAV libraries)
        await recorder_run(2, 200, True, "ogg", work_dir)
        await media_run(2, 1.0, True, work_dir)

        media: list[dict[str, Any]] = []
        for calls in (1, 100):
            runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
            for _ in range(args.repeat):  # alternated; the least CPU of each is kept
                for record in (False, True):
                    row = await media_run(calls, media_seconds[calls], record, work_dir)
                    runs[record].append(row)
                    print("media path  ", json.dumps(row))
            for record in (False, True):
                best = min(runs[record], key=lambda r: r["loop_cpu_ms_per_call_second_ours"])
                media.append({**best, "runs": len(runs[record])})

        alone: list[dict[str, Any]] = []
        for calls in (1, 100):
            for format, record in (("wav", False), ("wav", True), ("ogg", True)):
                if format == "ogg" and calls == 100 and not args.ogg_100:
                    continue  # 100 × 10 min of Opus is ~15 min of CPU on this machine
                row = await recorder_run(calls, ticks, record, format, work_dir)  # type: ignore[arg-type]
                alone.append(row)
                print("recorder    ", json.dumps(row))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    summary: list[dict[str, Any]] = []
    for calls in (1, 100):
        base = next(r for r in media if r["calls"] == calls and not r["recorded"])
        rec = next(r for r in media if r["calls"] == calls and r["recorded"])
        bare = next(r for r in alone if r["calls"] == calls and not r["recorded"])
        wav = next(
            r for r in alone if r["calls"] == calls and r["format"] == "wav" and r["recorded"]
        )
        added = wav["loop_cpu_ms_per_call_second"] - bare["loop_cpu_ms_per_call_second"]
        baseline = base["loop_cpu_ms_per_call_second_ours"]
        ab = rec["loop_cpu_ms_per_call_second_ours"] - baseline
        rss = max(wav["rss_growth_mb_per_call"], rec["rss_growth_mb_per_call"])
        summary.append(
            {
                "calls": calls,
                "unrecorded_loop_cpu_ms_per_call_second": baseline,
                "recorder_loop_cpu_ms_per_call_second": round(added, 4),
                "added_loop_cpu_pct": round(100 * added / baseline, 2),
                "added_loop_cpu_pct_ab_runs": round(100 * ab / baseline, 2),
                "worker_cpu_ms_per_call_second_wav": wav["worker_cpu_ms_per_call_second"],
                "worker_cpu_ms_per_call_second_ogg": next(
                    (
                        r["worker_cpu_ms_per_call_second"]
                        for r in alone
                        if r["calls"] == calls and r["format"] == "ogg"
                    ),
                    None,
                ),
                "rss_growth_mb_per_10_minute_call": rss,
                "loop_target_met": 100 * added / baseline <= LOOP_TARGET_PCT,
                "rss_target_met": rss <= RSS_TARGET_MB,
            }
        )
    for row in summary:
        print("summary     ", json.dumps(row))
    return {
        "benchmark": "recording",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "simulated_time": True,
        "targets": {
            "added_loop_cpu_pct_max": LOOP_TARGET_PCT,
            "rss_growth_mb_per_10_minute_call_max": RSS_TARGET_MB,
        },
        "notes": (
            "added_loop_cpu_pct: the recorder's own loop work (on_tick with 1 s chunks "
            "handed to the worker, timed alone over 10-minute calls) over the loop CPU of "
            "our side of a real RTP call without recording (send and receive paths, "
            "sockets; no VAD or STT, which makes the real share smaller still). "
            "added_loop_cpu_pct_ab_runs: the difference of two whole media runs, "
            "which a shared machine makes noisy. RSS: peak during the calls over the "
            "start, per call."
        ),
        "media_path": media,
        "recorder_alone": alone,
        "summary": summary,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short calls, for a smoke check")
    parser.add_argument("--repeat", type=int, default=2, help="media-path runs of each kind")
    parser.add_argument("--ogg-100", action="store_true", help="also 100 × 10 min of Opus")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "recording.json"))
    arguments = parser.parse_args()
    results = asyncio.run(main(arguments))
    out = Path(arguments.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
