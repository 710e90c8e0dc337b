"""CPU and SQL statements per silent call set-up + teardown, through the real path.

One process holds the platform's side: :class:`~flireo.services.sip_gateway.SipGateway`
with its :class:`~flireo.telephony.sip.ua.SipEndpoint` on a loopback port, the
:class:`~flireo.services.call_runner.CallRunner` and
:class:`~flireo.services.call_lifecycle.CallLifecycle` that ``flireo serve`` uses,
the store (a fresh SQLite WAL file, or a fresh schema on the PostgreSQL server of
``FLIREO_TEST_POSTGRES_URL``). sipp, in its own process (so its CPU is not ours),
places the calls one at a time (``-l 1``): INVITE → 100/180/200 → ACK → hold
(``--hold-ms``, default 0) → BYE. The agent is the ``silent`` profile of
``bench/sip_load.py``: no first message, callers send no audio, so no Whisper,
Piper or LLM work is done; what is measured is the platform's own cost of
admitting, preparing, answering, starting the session, ending it exactly once
(final status, usage, end-of-call report) and tearing the media down.

Two agent variants: ``plain`` (no webhook, as sip_load's silent agent) and
``webhooks`` (a webhook URL taking status-update and end-of-call-report: the
outbox rows are written, nothing is delivered; delivery is not set-up).

Measured per call, after a warm-up:

- ``cpu_ms``: this process's CPU (``time.process_time``: every thread) over the
  calls, minus what the process burns idle for the same wall time (measured
  before), divided by the calls;
- ``statements``: SQL statements sent (SQLAlchemy ``before_cursor_execute``),
  by kind, and transactions (``commit`` events).

``--profile`` adds a cProfile of the calls (top functions by cumulative time).

Run: ``nice -n 10 .venv/bin/python bench/call_setup_cpu.py --label before`` and
``--label after``; each run replaces its label's entry in
``bench/results/call_setup_cpu.json`` (``--backends sqlite`` for one backend).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "src", ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sip_load import scenario  # noqa: E402  (bench/sip_load.py: the same call as the load bench)

RESULTS = ROOT / "bench" / "results" / "call_setup_cpu.json"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
NUMBERS = {"plain": "+31850835037", "webhooks": "+31850835038"}
_WORD = re.compile(r"\s*(\w+)")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def statement_kind(sql: str) -> str:
    """``SELECT calls``, ``INSERT webhook_events``, ``BEGIN``... for the tally."""
    word = _WORD.match(sql)
    verb = word.group(1).upper() if word else "?"
    table = _TABLE.search(sql)
    return f"{verb} {table.group(1)}" if table and verb != "BEGIN" else verb


class StatementCounter:
    """Counts the statements and commits of an engine from :meth:`mark` on."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.commits = 0

    def attach(self, engine: Any) -> None:
        from sqlalchemy import event

        def on_execute(*args: Any) -> None:
            self.kinds[statement_kind(args[2])] += 1

        def on_commit(_conn: Any) -> None:
            self.commits += 1

        event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
        event.listen(engine.sync_engine, "commit", on_commit)

    def mark(self) -> None:
        self.kinds.clear()
        self.commits = 0


def sipp_args(port: int, number: str, workdir: Path, *, calls: int, hold_ms: int) -> list[str]:
    from tests.telephony.sipp import free_port

    workdir.mkdir(parents=True, exist_ok=True)
    path = scenario(workdir / f"call-{hold_ms}.xml", hold_ms=hold_ms)
    return [
        SIPP,
        f"127.0.0.1:{port}",
        "-sf",
        str(path),
        "-s",
        number,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(free_port()),
        "-m",
        str(calls),
        "-l",
        "1",
        "-r",
        "1000",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(workdir / "errors.log"),
    ]


async def run_sipp(port: int, number: str, workdir: Path, *, calls: int, hold_ms: int) -> None:
    """sipp places ``calls`` calls to ``number``, one at a time; raises unless all passed."""
    args = sipp_args(port, number, workdir, calls=calls, hold_ms=hold_ms)
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    code = await asyncio.wait_for(proc.wait(), timeout=calls * 2 + 60)
    if code != 0:
        errors = (workdir / "errors.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"sipp exited {code}: {errors}")


@contextlib.asynccontextmanager
async def platform_side(backend: str, tmp: Path) -> AsyncIterator[Any]:
    """Services on a fresh store, two agents with a number each, a started gateway."""
    import httpx
    from tests.api.conftest import RecordingDialer
    from tests.db import postgres_database, sqlite_database
    from tests.fakes.openai_chat import FakeOpenAI
    from tests.fakes.server import serve as serve_fake

    from flireo.api.app import create_app
    from flireo.security.secrets import Keyring, new_master_key
    from flireo.services.builder import build_services
    from flireo.services.call_lifecycle import CallLifecycle
    from flireo.services.call_runner import CallRunner
    from flireo.services.organizations import create_api_key, create_organization
    from flireo.services.sip_gateway import SipGateway
    from flireo.settings import Settings
    from flireo.telephony.sip.ua import SipEndpoint

    settings = Settings(
        data_dir=tmp,
        rate_limit_per_minute=1_000_000,
        allow_private_webhooks=True,
        initial_minutes_balance=1_000_000,
        sip_port=0,
        sip_invite_limit=1_000_000,
    )
    db = await (sqlite_database(tmp) if backend == "sqlite" else postgres_database())
    svc = build_services(
        settings, dialer=RecordingDialer(), db=db, keyring=Keyring([new_master_key()])
    )
    await svc.bus.start()
    fake = FakeOpenAI(api_key="sk-fake-openai")
    with serve_fake(fake.app()) as llm:
        async with svc.db.transaction() as s:
            org = await create_organization(s, "Bench", minutes_balance=1_000_000)
            _, key = await create_api_key(s, org.id)
        app = create_app(svc, manage_lifecycle=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench/api/v1",
            headers={"Authorization": f"Bearer {key}"},
        ) as api:
            r = await api.post("/byok", json={"provider": "openai", "api_key": fake.api_key})
            r.raise_for_status()
            r = await api.post("/sip-trunks", json={"name": "sipp", "host": "127.0.0.1"})
            r.raise_for_status()
            trunk_id = r.json()["sip_trunk"]["id"]
            for variant, number in NUMBERS.items():
                hooks: dict[str, Any] = (
                    {
                        "webhook_url": "https://hooks.example.com/flireo",
                        "webhook_events": ["status-update", "end-of-call-report"],
                    }
                    if variant == "webhooks"
                    else {}
                )
                r = await api.post(
                    "/agents",
                    json={
                        "name": f"Bench {variant}",
                        "first_message": None,
                        "stt_config": {"provider": "whisper", "language": "en"},
                        "llm_config": {
                            "provider": "openai",
                            "model": "gpt-4o-mini",
                            "base_url": f"{llm.url}/v1",
                            "messages": [{"role": "system", "content": "You are a receptionist."}],
                        },
                        "tts_config": {"provider": "piper"},
                        **hooks,
                    },
                )
                r.raise_for_status()
                r = await api.post(
                    "/numbers",
                    json={
                        "phone_number": number,
                        "name": "Bench",
                        "agent_id": r.json()["agent"]["id"],
                        "transfer_trunk_id": trunk_id,
                    },
                )
                r.raise_for_status()
        lifecycle = CallLifecycle(svc.db, svc.settings, svc.clock, bus=svc.bus)
        runner = CallRunner(svc, lifecycle)
        gw = SipGateway(
            svc,
            lifecycle,
            runner,
            endpoint=SipEndpoint(host="127.0.0.1", port=0, user_agent="Flireo-bench"),
            rtp_host="127.0.0.1",
        )
        await gw.start()
        try:
            yield gw
        finally:
            await gw.stop()
            await svc.bus.stop()
            await svc.http.aclose()
            await db.dispose()


async def finished_calls(gw: Any) -> int:
    from sqlalchemy import func, select

    from flireo.store.tables import Call

    async with gw.svc.db.read() as s:
        return int(
            (
                await s.execute(
                    select(func.count())
                    .select_from(Call)
                    .where(Call.status.in_(("ended", "failed", "rejected")))
                )
            ).scalar_one()
        )


async def settle(gw: Any, expected: int, timeout_s: float = 60.0) -> None:
    """Until ``expected`` calls are finished and the gateway holds no live call."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not gw.legs and not gw._tasks and await finished_calls(gw) >= expected:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"calls did not finish: {await finished_calls(gw)} of {expected}")


async def quiet(gw: Any, timeout_s: float = 60.0) -> None:
    """Until the gateway holds no live call, without touching the store."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not gw.legs and not gw._tasks:
            return
        await asyncio.sleep(0.05)


async def idle_cpu_rate(seconds: float = 2.0) -> float:
    """CPU seconds per wall second this process spends idle (timers, the fake LLM...)."""
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (time.process_time() - c0) / (time.perf_counter() - w0)


async def measure(
    backend: str, *, calls: int, warmup: int, hold_ms: int, profile: bool
) -> dict[str, Any]:
    counter = StatementCounter()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flireo-setup-cpu-") as tmp_name:
        tmp = Path(tmp_name)
        async with platform_side(backend, tmp) as gw:
            counter.attach(gw.svc.db.engine)
            done = 0
            port = gw.endpoint.port
            for variant, number in NUMBERS.items():
                await run_sipp(
                    gw.endpoint.port, number, tmp / "warm", calls=warmup, hold_ms=hold_ms
                )
                done += warmup
                await settle(gw, done)
                idle = await idle_cpu_rate()
                counter.mark()
                profiler = cProfile.Profile() if profile else None
                if profiler is not None:
                    profiler.enable()
                c0, w0 = time.process_time(), time.perf_counter()
                await run_sipp(
                    gw.endpoint.port, number, tmp / variant, calls=calls, hold_ms=hold_ms
                )
                done += calls
                await settle(gw, done)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                if profiler is not None:
                    profiler.disable()
                # the settle loop's own polling reads are not the calls' statements
                statements = dict(counter.kinds)
                commits = counter.commits
                net = max(0.0, cpu - idle * wall)
                result: dict[str, Any] = {
                    "calls": calls,
                    "cpu_ms_per_call": round(net / calls * 1000, 2),
                    "cpu_ms_per_call_gross": round(cpu / calls * 1000, 2),
                    "idle_cpu_pct": round(idle * 100, 2),
                    "wall_ms_per_call": round(wall / calls * 1000, 1),
                    "statements_per_call": None,
                    "commits_per_call": None,
                    "statements_by_kind_per_call": None,
                }
                # count once more without the settle polling, on one call
                counter.mark()
                await run_sipp(port, number, tmp / "count", calls=1, hold_ms=hold_ms)
                done += 1
                await asyncio.sleep(0.3)  # no polling while the call runs
                await quiet(gw)
                one = dict(counter.kinds)
                one_commits = counter.commits
                await settle(gw, done)
                result["statements_per_call"] = sum(one.values())
                result["commits_per_call"] = one_commits
                result["statements_by_kind_per_call"] = dict(sorted(one.items()))
                result["statements_with_polling"] = {
                    "total": sum(statements.values()),
                    "commits": commits,
                }
                if profiler is not None:
                    text = io.StringIO()
                    stats = pstats.Stats(profiler, stream=text)
                    stats.sort_stats("cumulative").print_stats(45)
                    result["profile_top_cumulative"] = text.getvalue().splitlines()[:80]
                out[variant] = result
                print(
                    f"{backend:8} {variant:8} {result['cpu_ms_per_call']:6.2f} ms CPU/call "
                    f"(gross {result['cpu_ms_per_call_gross']}, idle {result['idle_cpu_pct']} %), "
                    f"{result['statements_per_call']} statements, "
                    f"{result['commits_per_call']} commits, wall {result['wall_ms_per_call']} ms",
                    flush=True,
                )
    return out


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in load],
        "shared": True,
        "note": "2-core machine shared with other helpers' test runs; run under nice -n 10",
    }


def git_head() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="before / after: the JSON entry")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--hold-ms", type=int, default=0, help="ACK → BYE")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured calls")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON to update")
    args = parser.parse_args()
    if "postgres" in args.backends and not os.environ.get("FLIREO_TEST_POSTGRES_URL"):
        raise SystemExit("FLIREO_TEST_POSTGRES_URL is not set (or pass --backends sqlite)")
    t0 = time.monotonic()
    entry: dict[str, Any] = {
        "commit": git_head(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parameters": {"calls": args.calls, "warmup": args.warmup, "hold_ms": args.hold_ms},
        "machine_before": machine(),
    }
    for backend in args.backends.split(","):
        entry[backend] = asyncio.run(
            measure(
                backend,
                calls=args.calls,
                warmup=args.warmup,
                hold_ms=args.hold_ms,
                profile=args.profile,
            )
        )
    entry["machine_after"] = machine()
    entry["run_seconds"] = round(time.monotonic() - t0, 1)
    if args.no_write:
        print(json.dumps(entry, indent=1))
        return
    out = args.results
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    results.setdefault(
        "what",
        "CPU (process_time of the platform's process, minus its idle rate) and SQL statements "
        "per silent inbound call set-up + teardown: sipp (own process) → SipGateway → "
        "admit → prepare → answer → session → BYE → finish, one call at a time. "
        "'plain': agent without webhooks; 'webhooks': status-update + end-of-call-report "
        "outbox rows written (not delivered).",
    )
    key = f"{args.label}_profile" if args.profile else args.label
    results[key] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out} [{key}]")


if __name__ == "__main__":
    main()
