"""What a browser call (WebRTC, ``POST /calls/web``) costs ``flireo serve``: CPU per
call-second and the latency the WebRTC leg adds, at 1 and 20 concurrent calls.

**The server.** A separate process runs :func:`flireo.server.serve` (what
``flireo serve`` runs; SQLite WAL in a fresh data dir, memory bus). One thing is
added (the hidden ``--serve-child`` mode): a probe task that writes, every 0.5 s,
each live web call's ``first_sent_at`` (the ``time.monotonic()`` at which the
shared pacer handed the browser's track its first agent frame) to a JSON file.

**The callers.** aiortc peers in another process (``tests/webcall/caller.py``),
at most 5 per process, started 0.5 s apart: each posts its offer, plays silence as its microphone
(Opus, real time), and notes the ``time.monotonic()`` at which the first agent
audio arrived (decoded by its own jitter buffer). The agent says a first message
with the local Piper voice; callers stay silent, so no STT or LLM work is done:
what is measured is the platform's own cost of a browser call (ICE, DTLS-SRTP,
Opus both ways, resampling, the pacer, the VAD gate, the call record).

**Numbers.**

- *CPU per call-second*: the server process's CPU time (``/proc/<pid>/stat``,
  user + system) over a steady window (all calls up, greetings said), divided
  by calls × window seconds; the idle server's CPU in an equal window is
  reported and subtracted.
- *Added latency*: per call, caller's first-audio time minus the server's
  first-sent time (both CLOCK_MONOTONIC on this host): Opus encoding, SRTP,
  loopback UDP, the caller's jitter buffer and decoding. p50/p95/max.

Writes ``bench/results/web_call.json``. Usage::

    .venv/bin/python bench/web_call.py [--levels 1,20] [--window 10]

``WEB_CALL_BENCH_PROFILE=/tmp/server.prof`` runs the server under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "web_call.json"
KEY_RE = re.compile(r"flk_[A-Za-z0-9_\-]+")
TICKS = os.sysconf("SC_CLK_TCK")
#: between call starts: greetings are synthesized one after the other (Piper takes both
#: cores for a moment), so the latency is the WebRTC leg's under the load of live calls
STAGGER_S = 0.5
#: aiortc peers per caller process (one Python loop for 20 peers would itself be the bottleneck)
CALLS_PER_PROCESS = 5
GREETING = "Hello, this is the benchmark agent. Thank you for calling, how can I help you today?"


# --- the server child ------------------------------------------------------------------------
def serve_child(port: int, data_dir: Path, probe_path: Path) -> None:
    import flireo.webcall.service as service
    from flireo.server import serve
    from flireo.settings import Settings
    from flireo.webcall.transport import WebRtcTransport

    live: list[WebRtcTransport] = []

    class ProbeTransport(WebRtcTransport):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            live.append(self)

    service.WebRtcTransport = ProbeTransport  # type: ignore[misc]

    async def probe() -> None:
        while True:
            seen = {t.call_id: t.first_sent_at for t in live if t.call_id}
            dropped = {t.call_id: t.track.dropped for t in live if t.call_id}
            seen["dropped"] = dropped  # type: ignore[assignment]
            await asyncio.to_thread(probe_path.write_text, json.dumps(seen))
            await asyncio.sleep(0.5)

    async def main() -> None:
        task = asyncio.create_task(probe())
        try:
            await serve(
                Settings(
                    data_dir=data_dir,
                    host="127.0.0.1",
                    port=port,
                    sip_enabled=False,
                    allow_private_webhooks=True,
                    rate_limit_per_minute=100_000,
                    log_level="warning",
                )
            )
        finally:
            task.cancel()

    profile = os.environ.get("WEB_CALL_BENCH_PROFILE")  # cProfile the server's loop
    if not profile:
        asyncio.run(main())
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(main())
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


# --- the bench -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def silent_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(bytes(int(16_000 * seconds) * 2))
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_level(
    n: int, api: str, key: str, agent_id: str, wav: Path, work: Path, pid: int, window: float
) -> dict[str, Any]:
    groups = [list(range(i, min(n, i + CALLS_PER_PROCESS))) for i in range(0, n, CALLS_PER_PROCESS)]
    ramp = STAGGER_S * (len(groups[0]) - 1)
    seconds = ramp + 6.0 + window + 2.0
    procs: list[tuple[subprocess.Popen[str], Path]] = []
    for g, members in enumerate(groups):
        report = work / f"callers-{n}-{g}.json"
        command = [
            *(sys.executable, "-m", "tests.webcall.caller", "--api", api, "--key", key),
            *("--agent", agent_id, "--wav", str(wav), "--seconds", str(seconds)),
            *("--calls", str(len(members)), "--report", str(report)),
            *("--stagger", str(STAGGER_S)),
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        procs.append((proc, report))
        time.sleep(STAGGER_S / len(groups))  # the groups' calls interleave
    ids: list[str] = []
    for (proc, _), members in zip(procs, groups, strict=True):
        assert proc.stdout is not None
        ids += [json.loads(proc.stdout.readline())["call_id"] for _ in members]
    time.sleep(6.0)  # the last one connected, its greeting synthesized and playing
    callers_cpu0 = sum(cpu_seconds(p.pid) for p, _ in procs)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    callers_cpu = sum(cpu_seconds(p.pid) for p, _ in procs) - callers_cpu0
    results: list[dict[str, Any]] = []
    for proc, report in procs:
        proc.wait(timeout=seconds + 60)
        results += json.loads(report.read_text())
    time.sleep(1.0)
    sent = json.loads((work / "probe.json").read_text())
    latencies = [
        (r["first_audio_at"] - sent[r["call_id"]]) * 1000
        for r in results
        if r["first_audio_at"] is not None and sent.get(r["call_id"]) is not None
    ]
    # from the caller's connected to the server's first agent frame: the greeting's TTS
    to_first_frame = [
        (sent[r["call_id"]] - r["connected_at"]) * 1000
        for r in results
        if r.get("connected_at") is not None and sent.get(r["call_id"]) is not None
    ]
    dropped = sent.get("dropped", {})
    dropped_frames = sum(dropped.get(i, 0) for i in ids)
    (work / f"calls-{n}.json").write_text(json.dumps({"callers": results, "server": sent}))
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}) as c:
        deadline = time.monotonic() + 30
        ended = 0
        while time.monotonic() < deadline:
            ended = sum(c.get(f"/calls/{i}").json()["status"] == "ended" for i in ids)
            if ended == n:
                break
            time.sleep(0.5)
    return {
        "calls": n,
        #: 1-minute load average after the window (this 2-core machine is shared)
        "load_average_1m": round(os.getloadavg()[0], 2),
        "caller_processes": len(procs),
        "window_s": round(t1 - t0, 2),
        "server_cpu_s": round(cpu1 - cpu0, 3),
        "callers_cores_busy": round(callers_cpu / (t1 - t0), 3),
        "calls_with_audio": len(latencies),
        "connected_to_first_agent_frame_ms_p50": (
            round(statistics.median(to_first_frame), 1) if to_first_frame else None
        ),
        "calls_ended": ended,
        #: agent frames the server gave up because aiortc's sender fell behind
        "server_frames_dropped": dropped_frames,
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "p95": round(percentile(latencies, 0.95), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--levels", default="1,20")
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int)
    p.add_argument("--data", type=Path)
    p.add_argument("--probe", type=Path)
    a = p.parse_args()
    if a.serve_child:
        serve_child(a.port, a.data, a.probe)
        return
    work = Path(tempfile.mkdtemp(prefix="web_call_bench-"))
    port = free_port()
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [
            *(sys.executable, __file__, "--serve-child", "--port", str(port)),
            *("--data", str(work), "--probe", str(work / "probe.json")),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    base, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        key = KEY_RE.findall((work / "server.log").read_text(errors="replace"))[0]
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}) as c:
            r = c.post("/byok", json={"provider": "openai", "api_key": "sk-bench-never-used"})
            assert r.status_code in (200, 201), r.text
            r = c.post(
                "/agents",
                json={
                    "name": "Bench desk",
                    "first_message": GREETING,
                    "stt_config": {"provider": "whisper", "language": "en"},
                    # never asked: the callers say nothing
                    "llm_config": {
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "base_url": "http://127.0.0.1:9/v1",
                    },
                    "tts_config": {"provider": "piper"},
                },
            )
            assert r.status_code == 201, r.text
            agent_id = r.json()["agent"]["id"]
        wav = silent_wav(work / "silence.wav", 1.0)
        levels = [int(x) for x in a.levels.split(",")]
        run_level(1, api, key, agent_id, wav, work, server.pid, 2.0)  # warm-up (Piper load)
        idle0 = cpu_seconds(server.pid)
        time.sleep(a.window)
        idle_cpu = cpu_seconds(server.pid) - idle0
        out: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count()},
            "idle_server_cpu_s_per_window": round(idle_cpu, 3),
            "levels": [],
        }
        for n in levels:
            level = run_level(n, api, key, agent_id, wav, work, server.pid, a.window)
            busy = max(0.0, level["server_cpu_s"] - idle_cpu * level["window_s"] / a.window)
            level["cpu_per_call_second"] = round(busy / (n * level["window_s"]), 4)
            level["cores_busy"] = round(level["server_cpu_s"] / level["window_s"], 3)
            out["levels"].append(level)
            print(json.dumps(level))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
