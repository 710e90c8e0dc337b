"""How many calls a Flireo cluster holds and sets up through Kamailio on this
machine, with 1 and with 2 workers: sipp → Kamailio → ``flireo serve`` workers on
loopback, sharing one PostgreSQL database and Redis (issue 13, docs/scale-out.md).

**The cluster.** :class:`tests.cluster.kamailio.Cluster` as the cluster tests use
it: Kamailio (Debian ``kamailio``, ``deploy/kamailio.cfg``: dispatcher set 1 = the
workers, call-load algorithm, record-route) on 127.0.0.1, workers on 127.0.0.2,
127.0.0.3, a fresh PostgreSQL database, Redis as the bus, a silent agent (no
first message, so no Whisper/Piper/LLM work) behind one number, the trunk at
Kamailio's address. One thing differs from ``flireo serve``: each worker runs
:func:`flireo.server.serve` through ``bench/sip_load.py --serve-child``, i.e. the
same settings, logging and ``serve()`` plus the load bench's probe (a subclass of
``RtpSession`` that keeps the live sessions, a 10 ms loop-lag sampler and a control
socket). Separate worker processes have no other window on their RTP pacing; the
call path is unchanged.

**Tests** (for each cluster size of ``--workers``, each on its own fresh cluster):

1. *Setup rate*: sipp calls Kamailio at a rising rate (``-r``) for
   ``--step-seconds`` per step: INVITE → 100/180/200 → ACK → ``--hold-ms`` →
   BYE, all loose-routed through Kamailio. A step passes when ≥ 99.9 % of its
   calls succeed and the p95 set-up time (INVITE → 200 OK as sipp measures it,
   so Kamailio's hop included) is ≤ 50 ms. The ladder stops at the first failed
   step; a failed step runs again (``--retries``) only when it was disturbed:
   other programs used more than a quarter of a core during it (the machine is
   shared) or the hypervisor took ≥ 5 % of a core (steal). *CPU per call
   set-up*: the workers' user+system CPU (``/proc/<pid>/stat``) during a step
   divided by its calls, so set-up, the hold's RTP (comfort silence out) and
   teardown; Kamailio's processes, our database's PostgreSQL backends and Redis
   are counted apart. ``..._net`` subtracts what the idle workers burn for the
   same wall time (heartbeats, pollers), measured before the ladder.
2. *Concurrency*: calls are added in batches (sipp streams μ-law silence into
   each) up to each level; once all are up and a settle time has passed, a window
   counts, over every worker, the RTP packets sent more than 20 ms after their
   deadline plus the pacer ticks given up after a stalled loop (packets that never
   went out, counted as late). A level passes with < 1 % late and all its calls
   up at the window's start and end; a failed window that was disturbed (as
   above) is measured once more with the same calls, both are recorded. The
   ladder stops at the first failed level.
   Every batch hangs up after the last planned window.

Before each step the bench waits (up to ``--quiet-wait`` s) until other programs
use less than a quarter of a core, and records what they used during the step
next to the workers', Kamailio's, PostgreSQL's, Redis's and sipp's CPU (% of one
core), the machine's CPU by kind (user, system, softirq, steal...), the busiest
other processes, the load average before and after the run.

Run: ``.venv/bin/python bench/cluster.py`` (about 10 minutes on a quiet 2-core
machine; ``--quick`` for a ~2-minute smoke run that writes to a temp file).
Needs ``FLIREO_TEST_POSTGRES_URL`` and ``FLIREO_TEST_REDIS_URL`` (or
``--postgres-url``/``--redis-url``), kamailio and sipp. Prints a table and writes
``bench/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "src", ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.cluster.kamailio import (  # noqa: E402
    KAMAILIO,
    SIPP,
    Cluster,
    SippCaller,
    Worker,
    free_udp_port,
    kamailio_routes,
)

from sip_load import (  # noqa: E402  (bench/sip_load.py: the probe and the /proc readers)
    LATE_S,
    PROBE_PORT_ENV,
    machine_busy_s,
    percentile,
    process_cpu_s,
    runqueue_wait_s,
    silence_ulaw,
)

SIP_LOAD = ROOT / "bench" / "sip_load.py"
# the pass marks
MIN_SUCCESS = 0.999
MAX_P95_SETUP_S = 0.050
MAX_LATE = 0.01
#: other programs count as quiet below this (% of one core)
QUIET_PCT = 25.0
TARGET_CONCURRENT = 400
TARGET_CPS = 120
TARGET_SCALE = 1.7


# ======================================================================================
# the cluster, with the probe in every worker
# ======================================================================================
class ProbeClient:
    """The control socket of one worker's probe (see ``bench/sip_load.py``)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.io = self.sock.makefile("rwb")

    def __call__(self, cmd: str) -> dict[str, Any]:
        self.io.write(json.dumps({"cmd": cmd}).encode() + b"\n")
        self.io.flush()
        reply: dict[str, Any] = json.loads(self.io.readline())
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.io.close()
            self.sock.close()


@dataclass
class ProbedCluster(Cluster):
    """:class:`Cluster` whose workers run ``serve()`` with the load bench's probe."""

    probes: dict[int, ProbeClient] = field(default_factory=dict)

    def _start_workers(self, workers: list[Worker]) -> None:
        ports: dict[int, int] = {}
        for worker in workers:  # start them together (each takes seconds to import)
            worker.data_dir.mkdir(parents=True, exist_ok=True)
            ports[worker.index] = free_udp_port("127.0.0.1")
            worker.env[PROBE_PORT_ENV] = str(ports[worker.index])
            with worker.log_path.open("ab") as log:
                worker.proc = subprocess.Popen(
                    [sys.executable, str(SIP_LOAD), "--serve-child"],
                    env=worker.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        for worker in workers:
            self.wait_healthy(worker)
            self.probes[worker.index] = ProbeClient(ports[worker.index])

    def probe_all(self, cmd: str) -> list[dict[str, Any]]:
        return [self.probes[w.index](cmd) for w in self.workers]

    def live(self) -> int:
        """RTP sessions open on all workers (``mark`` is the cheap command that tells)."""
        return sum(reply["live"] for reply in self.probe_all("mark"))

    def wait_idle(self, timeout_s: float = 60.0) -> float:
        t0 = time.monotonic()
        while self.live() and time.monotonic() - t0 < timeout_s:
            time.sleep(0.25)
        return round(time.monotonic() - t0, 2)

    def stop(self) -> None:
        for probe in self.probes.values():
            probe.close()
        self.probes.clear()
        super().stop()


# ======================================================================================
# CPU of the parties
# ======================================================================================
def _procs() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def children_of(pid: int) -> list[int]:
    """``pid`` and its descendants (Kamailio forks its SIP, timer and ctl processes)."""
    parent: dict[int, int] = {}
    for p in _procs():
        stat = _read(f"/proc/{p}/stat")
        if stat:
            parent[p] = int(stat.rsplit(b")", 1)[1].split()[1])
    out, todo = [pid], [pid]
    while todo:
        current = todo.pop()
        kids = [p for p, pp in parent.items() if pp == current]
        out += kids
        todo += kids
    return out


def postgres_backends(db_name: str) -> list[int]:
    """PostgreSQL backend processes connected to database ``db_name``."""
    needle = db_name.encode()  # backends and autovacuum workers of that database
    return [
        p
        for p in _procs()
        if (cmd := _read(f"/proc/{p}/cmdline")).startswith(b"postgres:") and needle in cmd
    ]


def pids_named(comm: str) -> list[int]:
    return [p for p in _procs() if _read(f"/proc/{p}/comm").strip() == comm.encode()]


def busiest_processes(seconds: float = 2.0, top: int = 6) -> list[dict[str, Any]]:
    """The processes that used the most CPU over ``seconds`` (% of one core)."""

    def sample() -> dict[int, tuple[str, float]]:
        out = {}
        for p in _procs():
            stat = _read(f"/proc/{p}/stat")
            if not stat:
                continue
            head, rest = stat.rsplit(b")", 1)
            fields = rest.split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            out[p] = (head.split(b"(", 1)[1].decode(errors="replace"), cpu)
        return out

    first = sample()
    time.sleep(seconds)
    second = sample()
    used = [
        (cpu - first[p][1], name, p)
        for p, (name, cpu) in second.items()
        if p in first and p != os.getpid()
    ]
    used.sort(reverse=True)
    return [
        {"pid": p, "name": name, "cpu_pct": round(100 * cpu / seconds, 1)}
        for cpu, name, p in used[:top]
        if cpu > 0
    ]


_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu_s() -> dict[str, float]:
    """Seconds of all CPUs since boot by kind (``/proc/stat``): time the kernel spent in
    interrupts and softirqs (loopback packets) and time the hypervisor took (steal)
    belong to no process."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return {name: v / tick for name, v in zip(_CPU_FIELDS, values, strict=True)}


def all_process_cpu() -> dict[int, tuple[str, float]]:
    """Every process's name and user+system CPU seconds."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for p in _procs():
        stat = _read(f"/proc/{p}/stat")
        if not stat:
            continue
        head, rest = stat.rsplit(b")", 1)
        fields = rest.split()
        out[p] = (
            head.split(b"(", 1)[1].decode(errors="replace"),
            (int(fields[11]) + int(fields[12])) / tick,
        )
    return out


class ClusterMeter:
    """CPU used from now on by each worker, Kamailio, our database's PostgreSQL
    backends, Redis, sipp, this driver, and every other program on the machine."""

    def __init__(self, cluster: ProbedCluster, sipp_pids: list[int] | None = None) -> None:
        assert cluster.kamailio is not None
        assert cluster.kamailio.proc is not None
        assert cluster.db is not None
        self.db_name = cluster.db.name
        self.workers = [w.proc.pid for w in cluster.workers if w.proc is not None]
        self.kamailio = children_of(cluster.kamailio.proc.pid)
        self.redis = pids_named("redis-server")
        self.sipp = list(sipp_pids or [])
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_s()
        self.own0 = time.process_time()
        self.reaped0 = self._reaped()
        self.worker0 = [process_cpu_s(p) for p in self.workers]
        self.wait0 = [runqueue_wait_s(p) for p in self.workers]
        self.kamailio0 = self._sum(self.kamailio)
        self.redis0 = self._sum(self.redis)
        self.sipp0 = {p: process_cpu_s(p) for p in self.sipp}
        self.pg0 = {p: process_cpu_s(p) for p in postgres_backends(self.db_name)}
        self.kinds0 = machine_cpu_s()
        self.procs0 = all_process_cpu()

    @staticmethod
    def _reaped() -> float:
        """CPU of child processes that ended (sipp runs; the workers do not end)."""
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    @staticmethod
    def _sum(pids: list[int]) -> float:
        return sum(c for p in pids if not math.isnan(c := process_cpu_s(p)))

    def read(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        workers = [process_cpu_s(p) - c0 for p, c0 in zip(self.workers, self.worker0, strict=True)]
        waits = [runqueue_wait_s(p) - w0 for p, w0 in zip(self.workers, self.wait0, strict=True)]
        kamailio = self._sum(self.kamailio) - self.kamailio0
        redis = self._sum(self.redis) - self.redis0
        sipp = (self._reaped() - self.reaped0) + sum(
            used for p, c0 in self.sipp0.items() if not math.isnan(used := process_cpu_s(p) - c0)
        )
        pg = 0.0
        pg_pids = postgres_backends(self.db_name)
        for p in pg_pids:  # a new backend: all its CPU is new
            used = process_cpu_s(p) - self.pg0.get(p, 0.0)
            pg += 0.0 if math.isnan(used) else used
        own = time.process_time() - self.own0
        busy = machine_busy_s() - self.busy0
        worker_total = sum(c for c in workers if not math.isnan(c))

        def pct(seconds: float) -> float:
            return round(100 * seconds / wall, 1)

        kinds = machine_cpu_s()
        ours = {*self.workers, *self.kamailio, *self.redis, *self.sipp, *pg_pids, os.getpid()}
        others = [
            (cpu - self.procs0.get(p, (name, 0.0))[1], name, p)
            for p, (name, cpu) in all_process_cpu().items()
            if p not in ours
        ]
        others.sort(reverse=True)
        return {
            "wall_s": round(wall, 2),
            "machine_pct_by_kind": {
                k: pct(kinds[k] - self.kinds0[k]) for k in _CPU_FIELDS if k != "idle"
            },
            "busiest_others": [
                {"pid": p, "name": name, "cpu_pct": pct(cpu)}
                for cpu, name, p in others[:4]
                if pct(cpu) >= 1.0
            ],
            "worker_cpu_s": round(worker_total, 3),
            "kamailio_cpu_s": round(kamailio, 3),
            "postgres_cpu_s": round(pg, 3),
            "worker_cpu_pct": pct(worker_total),
            "worker_cpu_pct_each": [pct(c) for c in workers],
            "worker_runqueue_wait_pct_each": [pct(w) for w in waits],
            "kamailio_cpu_pct": pct(kamailio),
            "postgres_cpu_pct": pct(pg),
            "redis_cpu_pct": pct(redis),
            "sipp_cpu_pct": pct(sipp),
            "driver_cpu_pct": pct(own),
            "machine_busy_pct": pct(busy),
            "others_cpu_pct": max(
                0.0, pct(busy - worker_total - kamailio - pg - redis - sipp - own)
            ),
        }


#: the hypervisor took this much (% of one core): a disturbed step, like busy others
STEAL_PCT = 5.0


def disturbed(used: dict[str, Any]) -> bool:
    """Other programs or the hypervisor took a share of the CPU during a step."""
    steal = float(used["machine_pct_by_kind"]["steal"])
    return float(used["others_cpu_pct"]) >= QUIET_PCT or steal >= STEAL_PCT


def wait_for_quiet(cluster: ProbedCluster, max_wait_s: float) -> float:
    """Wait (up to ``max_wait_s``) until other programs use less than
    :data:`QUIET_PCT` of a core; what they used in the last second."""
    deadline = time.monotonic() + max_wait_s
    while True:
        meter = ClusterMeter(cluster)
        time.sleep(1.0)
        busy = float(meter.read()["others_cpu_pct"])
        if busy < QUIET_PCT or time.monotonic() > deadline:
            return busy


# ======================================================================================
# the tests
# ======================================================================================
def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


def rtp_totals(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Send counters summed over the workers, and the late share of all packets owed."""
    sent = sum(s["packets_sent"] for s in stats)
    late = sum(s["packets_sent_late"] for s in stats)
    skipped = sum(s["ticks_skipped"] for s in stats)
    owed = sent + skipped
    return {
        "packets_sent": sent,
        "packets_sent_late": late,
        "ticks_skipped": skipped,
        "late_pct": round(100 * (late + skipped) / owed, 3) if owed else None,
        "lateness_ms_each": [s["lateness_ms"] for s in stats],
        "loop_lag_ms_each": [s["loop_lag_ms"] for s in stats],
        "gc_pauses_each": [s["gc_pauses"] for s in stats],
    }


def routed_since(cluster: ProbedCluster, before: set[str]) -> dict[str, int]:
    """Calls Kamailio dispatched to each worker (SIP host) since ``before``."""
    assert cluster.kamailio is not None
    routes = kamailio_routes(cluster.kamailio.logs())
    return dict(Counter(host for cid, host in routes.items() if cid not in before))


def _routes(cluster: ProbedCluster) -> set[str]:
    assert cluster.kamailio is not None
    return set(kamailio_routes(cluster.kamailio.logs()))


def setup_step(
    cluster: ProbedCluster,
    workdir: Path,
    *,
    rate: float,
    calls: int,
    hold_ms: int,
    quiet_wait_s: float,
    idle_pct: float,
) -> dict[str, Any]:
    """``calls`` calls at ``rate`` per second through Kamailio: outcome, set-up times,
    the CPU of every party, and the workers' RTP lateness meanwhile."""
    assert cluster.kamailio is not None
    others_before = wait_for_quiet(cluster, quiet_wait_s) if quiet_wait_s else None
    before = _routes(cluster)
    caller = SippCaller(
        workdir, cluster.kamailio.address, calls=calls, rate=rate, hold_ms=hold_ms, trace=False
    )
    cluster.probe_all("mark")
    meter = ClusterMeter(cluster)
    result = caller.start().wait()
    used = meter.read()
    rtp = rtp_totals(cluster.probe_all("stats"))
    drain = cluster.wait_idle()
    p95 = result.p95_setup_s()
    step: dict[str, Any] = {
        "rate_cps": rate,
        "calls": calls,
        "successful": result.successful,
        "failed": result.failed,
        "success_pct": round(100 * result.successful / calls, 2),
        "setup_ms": {
            "p50": _ms(percentile(result.setup_s, 50)),
            "p95": _ms(p95),
            "p99": _ms(percentile(result.setup_s, 99)),
            "max": _ms(max(result.setup_s, default=None)),
            "measured": len(result.setup_s),
        },
        "per_worker_calls": routed_since(cluster, before),
        "worker_cpu_ms_per_call": round(1000 * used["worker_cpu_s"] / calls, 2),
        "worker_cpu_ms_per_call_net": round(
            1000 * (used["worker_cpu_s"] - idle_pct / 100 * used["wall_s"]) / calls, 2
        ),
        "kamailio_cpu_ms_per_call": round(1000 * used["kamailio_cpu_s"] / calls, 2),
        "postgres_cpu_ms_per_call": round(1000 * used["postgres_cpu_s"] / calls, 2),
        "late_pct": rtp["late_pct"],
        "rtp": rtp,
        **{k: v for k, v in used.items() if not k.endswith("_cpu_s")},
        "others_cpu_pct_before": others_before,
        "drain_s": drain,
        "sipp_exit": result.exit_code,
    }
    step["passed"] = bool(
        result.successful >= MIN_SUCCESS * calls and p95 is not None and p95 <= MAX_P95_SETUP_S
    )
    if result.successful < calls:
        step["sipp_errors"] = result.errors[-1500:]
    return step


def setup_rate_test(
    cluster: ProbedCluster,
    workdir: Path,
    *,
    rates: list[float],
    step_s: float,
    hold_ms: int,
    retries: int,
    quiet_wait_s: float,
    idle_pct: float,
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for rate in rates:
        for attempt in range(1, retries + 2):
            step = setup_step(
                cluster,
                workdir / f"setup-{rate:g}-{attempt}",
                rate=rate,
                calls=max(1, round(rate * step_s)),
                hold_ms=hold_ms,
                quiet_wait_s=quiet_wait_s,
                idle_pct=idle_pct,
            )
            step["attempt"] = attempt
            steps.append(step)
            print_setup_step(step)
            if step["passed"] or not disturbed(step):
                break  # passed, or failed on a quiet machine: no second chance
        if not step["passed"]:
            break
        best = step
    return {
        "max_cps": best["rate_cps"] if best else None,
        "p95_setup_ms_at_max": best["setup_ms"]["p95"] if best else None,
        "steps": steps,
    }


def concurrency_test(
    cluster: ProbedCluster,
    workdir: Path,
    *,
    levels: list[int],
    ramp_cps: float,
    window_s: float,
    settle_s: float,
    quiet_wait_s: float,
    retries: int,
) -> dict[str, Any]:
    """Add calls in batches up to each level; RTP lateness over all workers once all
    are up. Every batch hangs up at about the same planned time, after the last
    level's window (with slack for set-ups slower than ``ramp_cps``)."""
    assert cluster.kamailio is not None
    workdir.mkdir(parents=True, exist_ok=True)
    silence = silence_ulaw(workdir / "silence.ulaw")
    others_before = wait_for_quiet(cluster, quiet_wait_s) if quiet_wait_s else None
    before = _routes(cluster)
    batches = [b - a for a, b in zip([0, *levels], levels, strict=False)]
    planned = sum(1.5 * n / ramp_cps + 4 + settle_s + window_s for n in batches)
    planned += 5 + retries * (window_s + 1)  # a second window of one disturbed level
    t0 = time.monotonic()
    callers: list[SippCaller] = []
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for level, batch in zip(levels, batches, strict=True):
        caller = SippCaller(
            workdir / f"batch-{level}",
            cluster.kamailio.address,
            calls=batch,
            rate=ramp_cps,
            hold_ms=int(1000 * (planned - (time.monotonic() - t0))),
            stream=silence,
            trace=False,
        )
        callers.append(caller.start())
        ramp_t0 = time.monotonic()
        while time.monotonic() - ramp_t0 < 2 * batch / ramp_cps + 5:
            if cluster.live() >= level:
                break
            time.sleep(0.5)
        up_s = round(time.monotonic() - ramp_t0, 2)
        time.sleep(settle_s)
        for attempt in range(1, retries + 2):
            live = sum(r["live"] for r in cluster.probe_all("mark"))
            meter = ClusterMeter(cluster, [c.pid for c in callers])
            time.sleep(window_s)
            used = meter.read()
            stats = cluster.probe_all("stats")
            live_end = sum(s["live"] for s in stats)
            rtp = rtp_totals(stats)
            late = rtp["late_pct"]
            step: dict[str, Any] = {
                "calls": level,
                "attempt": attempt,
                "batch_up_after_s": up_s,
                "live_at_window_start": live,
                "live_at_window_end": live_end,
                "live_each_at_window_end": [s["live"] for s in stats],
                "late_pct": late,
                "packets_expected": int(level * used["wall_s"] / 0.020),
                "rtp": rtp,
                "worker_cpu_pct_per_call": round(used["worker_cpu_pct"] / level, 3),
                **{k: v for k, v in used.items() if not k.endswith("_cpu_s")},
            }
            step["passed"] = bool(
                late is not None and late < 100 * MAX_LATE and live >= level and live_end >= level
            )
            steps.append(step)
            print_concurrency_step(step)
            if step["passed"] or not disturbed(used):
                break  # passed, or failed on a quiet machine: no second window
        if not step["passed"]:
            break
        best = step
    results = [c.wait() for c in callers]
    drain = cluster.wait_idle()
    return {
        "max_concurrent": best["calls"] if best else None,
        "late_pct_at_max": best["late_pct"] if best else None,
        "worker_cpu_pct_at_max": best["worker_cpu_pct"] if best else None,
        "ramp_cps": ramp_cps,
        "others_cpu_pct_before": others_before,
        "per_worker_calls": routed_since(cluster, before),
        "calls_successful": sum(r.successful for r in results),
        "calls_failed": sum(r.failed for r in results),
        "drain_s": drain,
        "steps": steps,
    }


def warm_up(cluster: ProbedCluster, workdir: Path) -> dict[str, int]:
    """A few calls until every worker has taken one (models load once per process)."""
    assert cluster.kamailio is not None
    before = _routes(cluster)
    for attempt in range(3):
        caller = SippCaller(
            workdir / f"warm-up-{attempt}",
            cluster.kamailio.address,
            calls=2 * len(cluster.workers),
            rate=2,
            hold_ms=1500,
            trace=False,
        )
        caller.start().wait()
        spread = routed_since(cluster, before)
        if len(spread) == len(cluster.workers):
            break
    cluster.wait_idle()
    return spread


def idle_workers_cpu_pct(cluster: ProbedCluster, seconds: float = 3.0) -> float:
    """% of one core the workers (all together) use with no call up."""
    meter = ClusterMeter(cluster)
    time.sleep(seconds)
    return float(meter.read()["worker_cpu_pct"])


def run_size(
    size: int, workdir: Path, args: argparse.Namespace, pg: str, redis: str
) -> dict[str, Any]:
    """One fresh cluster of ``size`` workers: both tests."""
    cluster = ProbedCluster(workdir, pg, redis, size=size)
    started = time.monotonic()
    try:
        cluster.start()
        assert cluster.kamailio is not None
        assert cluster.kamailio.proc is not None
        print(
            f"{size} worker(s): Kamailio pid {cluster.kamailio.proc.pid} on "
            f"{cluster.kamailio.host}:{cluster.kamailio.port}, workers "
            + ", ".join(
                f"{w.sip_host}:{w.sip_port} (pid {w.proc.pid if w.proc else '-'})"
                for w in cluster.workers
            ),
            flush=True,
        )
        spread = warm_up(cluster, workdir)
        idle_pct = idle_workers_cpu_pct(cluster)
        print(f"setup rate through Kamailio ({size} worker(s)):", flush=True)
        setup = setup_rate_test(
            cluster,
            workdir,
            rates=[float(x) for x in args.rates.split(",") if x],
            step_s=args.step_seconds,
            hold_ms=args.hold_ms,
            retries=args.retries,
            quiet_wait_s=args.quiet_wait,
            idle_pct=idle_pct,
        )
        print(f"concurrent calls, sipp streaming silence into each ({size} worker(s)):")
        concurrency = concurrency_test(
            cluster,
            workdir / "concurrency",
            levels=[int(x) for x in args.concurrency.split(",") if x],
            ramp_cps=args.ramp_cps,
            window_s=args.window_seconds,
            settle_s=args.settle_seconds,
            quiet_wait_s=args.quiet_wait,
            retries=args.retries,
        )
    except BaseException:
        print(cluster.logs()[-4000:], file=sys.stderr)
        raise
    finally:
        cluster.stop()
    return {
        "workers": size,
        "warm_up_per_worker_calls": spread,
        "idle_workers_cpu_pct": idle_pct,
        "setup_rate": setup,
        "concurrency": concurrency,
        "run_seconds": round(time.monotonic() - started, 1),
    }


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    setup, conc = run["setup_rate"], run["concurrency"]
    steps = setup["steps"]
    best = next((s for s in reversed(steps) if s["passed"]), None)
    first = steps[0] if steps else None
    return {
        "max_concurrent": conc["max_concurrent"],
        "late_pct_at_max_concurrent": conc["late_pct_at_max"],
        "max_cps": setup["max_cps"],
        "p95_setup_ms_at_max_cps": setup["p95_setup_ms_at_max"],
        "worker_cpu_ms_per_call_lowest_rate": first["worker_cpu_ms_per_call"] if first else None,
        "worker_cpu_ms_per_call_at_max_cps": best["worker_cpu_ms_per_call"] if best else None,
        "worker_cpu_ms_per_call_net_lowest_rate": first["worker_cpu_ms_per_call_net"]
        if first
        else None,
        "worker_cpu_ms_per_call_net_at_max_cps": best["worker_cpu_ms_per_call_net"]
        if best
        else None,
        "kamailio_cpu_ms_per_call_lowest_rate": first["kamailio_cpu_ms_per_call"]
        if first
        else None,
        "postgres_cpu_ms_per_call_lowest_rate": first["postgres_cpu_ms_per_call"]
        if first
        else None,
    }


# ======================================================================================
# output and main
# ======================================================================================
def print_setup_step(step: dict[str, Any]) -> None:
    s = step["setup_ms"]
    print(
        f"  {step['rate_cps']:>4g} cps x {step['calls']:>4d}: ok {step['successful']}/"
        f"{step['calls']}, setup p50/p95/max {s['p50']}/{s['p95']}/{s['max']} ms, "
        f"late {step['late_pct']}%, workers {step['worker_cpu_pct_each']}% "
        f"({step['worker_cpu_ms_per_call']} ms/call), kamailio {step['kamailio_cpu_pct']}%, "
        f"pg {step['postgres_cpu_pct']}%, sipp {step['sipp_cpu_pct']}%, "
        f"others {step['others_cpu_pct']}% {step['busiest_others']}, steal "
        f"{step['machine_pct_by_kind']['steal']}%, spread {step['per_worker_calls']} "
        f"-> {'pass' if step['passed'] else 'FAIL'}",
        flush=True,
    )


def print_concurrency_step(step: dict[str, Any]) -> None:
    rtp = step["rtp"]
    print(
        f"  {step['calls']:>4d} calls (live {step['live_at_window_start']}->"
        f"{step['live_at_window_end']} {step['live_each_at_window_end']}): late "
        f"{step['late_pct']}% ({rtp['packets_sent_late']} late + {rtp['ticks_skipped']} "
        f"skipped of {rtp['packets_sent']}), loop lag p99 "
        f"{[lag['p99'] for lag in rtp['loop_lag_ms_each']]} ms, workers "
        f"{step['worker_cpu_pct_each']}%, sipp {step['sipp_cpu_pct']}%, "
        f"others {step['others_cpu_pct']}% {step['busiest_others']}, steal "
        f"{step['machine_pct_by_kind']['steal']}% -> {'pass' if step['passed'] else 'FAIL'}",
        flush=True,
    )


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Flireo cluster through Kamailio (bench/cluster.py)")
    for col in (
        "workers",
        "step",
        "ok %",
        "setup p50/p95 ms",
        "late %",
        "worker CPU ms/call",
        "workers CPU %",
        "kamailio %",
        "others %",
        "pass",
    ):
        table.add_column(col, justify="right")
    for run in results["runs"]:
        for s in run["setup_rate"]["steps"]:
            table.add_row(
                str(run["workers"]),
                f"{s['rate_cps']:g} cps",
                str(s["success_pct"]),
                f"{s['setup_ms']['p50']}/{s['setup_ms']['p95']}",
                str(s["late_pct"]),
                str(s["worker_cpu_ms_per_call"]),
                str(s["worker_cpu_pct"]),
                str(s["kamailio_cpu_pct"]),
                str(s["others_cpu_pct"]),
                "yes" if s["passed"] else "no",
            )
        for s in run["concurrency"]["steps"]:
            table.add_row(
                str(run["workers"]),
                f"{s['calls']} held",
                "",
                "",
                str(s["late_pct"]),
                "",
                str(s["worker_cpu_pct"]),
                str(s["kamailio_cpu_pct"]),
                str(s["others_cpu_pct"]),
                "yes" if s["passed"] else "no",
            )
    console = Console(width=max(130, shutil.get_terminal_size().columns))
    console.print(table)
    for size, summary in results["summary"]["by_workers"].items():
        console.print(
            f"{size} worker(s): max concurrent {summary['max_concurrent']} "
            f"(late {summary['late_pct_at_max_concurrent']}%), max {summary['max_cps']} cps "
            f"(p95 setup {summary['p95_setup_ms_at_max_cps']} ms), worker CPU "
            f"{summary['worker_cpu_ms_per_call_lowest_rate']} ms per call at the lowest rate"
        )
    scale = results["summary"]
    console.print(
        f"1 → 2 workers: concurrency x{scale['scale_concurrency']}, cps x{scale['scale_cps']} "
        f"(targets: ≥ {TARGET_CONCURRENT} concurrent, ≥ {TARGET_CPS} cps, x{TARGET_SCALE})"
    )


def _version(cmd: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    return "?"


def code_state() -> dict[str, Any]:
    """The commit measured, and the files under src/ that differ from it (the working
    tree is shared: a run measures what is on disk)."""

    def git(*cmd: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(
                ["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_src_files": git("diff", "--name-only", "HEAD", "--", "src").split(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~2-minute smoke run")
    parser.add_argument("--workers", default="1,2", help="cluster sizes, one cluster each")
    parser.add_argument("--rates", default="20,40,60,80,100,120,150", help="cps ladder")
    parser.add_argument("--step-seconds", type=float, default=5.0, help="calls = rate x this")
    parser.add_argument("--hold-ms", type=int, default=1000, help="answer → BYE, set-up test")
    parser.add_argument("--retries", type=int, default=1, help="for steps disturbed by others")
    parser.add_argument("--concurrency", default="100,150,200,250,300,350,400,500,600")
    parser.add_argument("--ramp-cps", type=float, default=30.0, help="rate new calls come in")
    parser.add_argument("--window-seconds", type=float, default=6.0)
    parser.add_argument("--settle-seconds", type=float, default=2.0)
    parser.add_argument("--quiet-wait", type=float, default=5.0, help="max s per step")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("FLIREO_TEST_POSTGRES_URL"), help="admin URL"
    )
    parser.add_argument("--redis-url", default=os.environ.get("FLIREO_TEST_REDIS_URL"))
    parser.add_argument("--workdir", help="keep sipp, Kamailio and worker files here")
    parser.add_argument("--out", help="default: bench/results/cluster.json (--quick: a temp file)")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.concurrency = "10,20", "20,40"
        args.step_seconds, args.hold_ms, args.window_seconds = 2.0, 500, 2.0
        args.settle_seconds, args.retries, args.quiet_wait = 1.0, 0, min(args.quiet_wait, 1.0)
        args.ramp_cps = 20.0
    if not args.postgres_url or not args.redis_url:
        parser.error("set FLIREO_TEST_POSTGRES_URL and FLIREO_TEST_REDIS_URL (or the options)")
    out = Path(
        args.out
        or (
            Path(tempfile.gettempdir()) / "cluster-quick.json"
            if args.quick
            else ROOT / "bench" / "results" / "cluster.json"
        )
    )
    sizes = [int(x) for x in args.workers.split(",") if x]

    started = time.monotonic()
    load_before = os.getloadavg()
    busiest_before = busiest_processes()
    code = code_state()
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        workdir = (
            Path(args.workdir)
            if args.workdir
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cluster-")))
        )
        for size in sizes:
            runs.append(
                run_size(size, workdir / f"workers-{size}", args, args.postgres_url, args.redis_url)
            )
    load_after = os.getloadavg()
    busiest_after = busiest_processes()

    by_workers = {str(run["workers"]): summarize(run) for run in runs}

    def ratio(key: str) -> float | None:
        one, two = by_workers.get("1", {}).get(key), by_workers.get("2", {}).get(key)
        return round(two / one, 2) if one and two else None

    best_concurrent = max((s["max_concurrent"] or 0 for s in by_workers.values()), default=0)
    best_cps = max((s["max_cps"] or 0 for s in by_workers.values()), default=0)
    scale_concurrency = ratio("max_concurrent")
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sipp": _version([SIPP, "-v"]),
            "kamailio": _version([KAMAILIO, "-v"]),
            "code": code,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "busiest_processes_before": busiest_before,
            "busiest_processes_after": busiest_after,
        },
        "what": (
            "sipp → Kamailio (deploy/kamailio.cfg) → N flireo serve workers (serve() with "
            "bench/sip_load.py's RTP probe) on loopback, one PostgreSQL database, Redis bus, "
            "silent agent. setup = INVITE → 200 OK as sipp measures it through Kamailio; "
            "late = RTP packets the workers sent > 20 ms after their deadline plus pacer ticks "
            "skipped, summed over the workers; worker CPU per call = the workers' utime+stime "
            "over a set-up step / its calls (set-up + hold's RTP + teardown); *_cpu_pct = % of "
            "one core; others = every other program on this shared 2-core machine "
            "(PostgreSQL's background processes included: only our database's backends are "
            "counted as postgres). sipp reports set-up times in whole ms, here in steps of "
            "4 ms (its clock)"
        ),
        "parameters": {
            "quick": args.quick,
            "workers": sizes,
            "rates": args.rates,
            "step_seconds": args.step_seconds,
            "hold_ms": args.hold_ms,
            "retries": args.retries,
            "concurrency": args.concurrency,
            "ramp_cps": args.ramp_cps,
            "window_seconds": args.window_seconds,
            "settle_seconds": args.settle_seconds,
            "quiet_wait_seconds": args.quiet_wait,
            "quiet_pct": QUIET_PCT,
            "pass_marks": {
                "min_success_pct": 100 * MIN_SUCCESS,
                "max_p95_setup_ms": 1000 * MAX_P95_SETUP_S,
                "max_late_pct": 100 * MAX_LATE,
                "late_threshold_ms": 1000 * LATE_S,
            },
        },
        "summary": {
            "by_workers": by_workers,
            "scale_concurrency": scale_concurrency,
            "scale_cps": ratio("max_cps"),
            "targets": {
                "concurrent": TARGET_CONCURRENT,
                "cps": TARGET_CPS,
                "scale_concurrency": TARGET_SCALE,
            },
            "met": {
                "concurrent": best_concurrent >= TARGET_CONCURRENT,
                "cps": best_cps >= TARGET_CPS,
                "scale_concurrency": (scale_concurrency or 0) >= TARGET_SCALE,
            },
        },
        "runs": runs,
        "run_seconds": round(time.monotonic() - started, 1),
    }
    print_table(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({results['run_seconds']} s)")


if __name__ == "__main__":
    main()
