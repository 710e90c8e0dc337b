"""A local Flireo cluster for tests and benches: Kamailio (Debian ``kamailio``,
``deploy/kamailio.cfg``) in front of N ``flireo serve`` workers on loopback
addresses 127.0.0.2, 127.0.0.3, ... sharing one PostgreSQL database and Redis,
and sipp callers/carriers that speak to Kamailio only.

- :class:`Kamailio` runs ``kamailio -DD -E`` (foreground, log to stderr) with
  ``deploy/kamailio.cfg`` and ``-A`` parameters: a free UDP port, its own
  runtime dir and pid file, a generated dispatcher list (set 1: the workers,
  set 2: an optional carrier for outbound calls).
- :class:`Worker` is a ``flireo serve`` (:class:`tests.live.server.LiveServer`)
  with its own node id, SIP address and API port, in cluster mode
  (``FLIREO_BUS=redis``, the contract in ``docs/scale-out.md``).
- :class:`Cluster` ties them together: a fresh PostgreSQL database, one secret
  keyring for all workers, the agent/number/trunk provisioning over the API,
  and start/stop of everything.
- :func:`uac_scenario` / :func:`uas_scenario` write sipp scenarios that carry
  Kamailio's Record-Route in ``[routes]``, so that ACK and BYE are
  loose-routed through Kamailio to the worker that owns the call.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.live.server import LiveServer, PostgresDatabase

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = ROOT / "deploy" / "kamailio.cfg"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KAMCMD = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
#: the number callers dial (an agent without a first message: silent calls)
INBOUND_NUMBER = "+31850835037"
_CONTACT = re.compile(r"^(?:Contact|m)\s*:.*?@([0-9.]+):(\d+)", re.MULTILINE | re.IGNORECASE)
_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def free_udp_port(host: str) -> int:
    """A port free for UDP and TCP on ``host`` (workers listen on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port on {host}")


def options_ping(host: str, port: int, timeout_s: float = 1.0) -> int | None:
    """Send one OPTIONS over UDP; the status code of the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout_s)
        lport = s.getsockname()[1]
        branch = "z9hG4bK" + secrets.token_hex(8)
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1:{lport}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), (host, port))
        try:
            data = s.recv(65535)
        except OSError:
            return None
    first = data.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


# ======================================================================================
# Kamailio
# ======================================================================================
class Kamailio:
    """``kamailio -DD -E`` with ``deploy/kamailio.cfg`` on a free UDP port."""

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        ping_interval_s: int = 1,
        fr_timer_ms: int = 2000,
        children: int = 2,
        debug: int = 2,
    ) -> None:
        self.workdir = workdir
        self.host = host
        self.port = free_udp_port(host)
        self.ping_interval_s = ping_interval_s
        self.fr_timer_ms = fr_timer_ms
        self.children = children
        self.debug = debug
        self.list_path = workdir / "dispatcher.list"
        self.run_dir = workdir / "run"
        self.pid_path = self.run_dir / "kamailio.pid"
        self.ctl_path = self.run_dir / "ctl.sock"
        self.log_path = workdir / "kamailio.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def write_list(
        self, workers: list[tuple[str, int, str]], carrier: tuple[str, int] | None = None
    ) -> None:
        """Set 1: ``(host, port, duid)`` of each worker; set 2: the carrier."""
        lines = ["# setid destination flags priority attributes"]
        for host, port, duid in workers:
            lines.append(f"1 sip:{host}:{port} 8 0 duid={duid}")
        if carrier is not None:
            lines.append(f"2 sip:{carrier[0]}:{carrier[1]} 0 0 duid=carrier")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.list_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [
            KAMAILIO,
            "-DD",
            "-E",
            "-f",
            str(KAMAILIO_CFG),
            "-P",
            str(self.pid_path),
            "-Y",
            str(self.run_dir),
            "-w",
            str(self.run_dir),
            "-A",
            f"FLIREO_LISTEN=udp:{self.host}:{self.port}",
            "-A",
            f'FLIREO_DS_LIST="{self.list_path}"',
            "-A",
            f"FLIREO_PING_INTERVAL={self.ping_interval_s}",
            "-A",
            f"FLIREO_FR_TIMER={self.fr_timer_ms}",
            "-A",
            f"FLIREO_CHILDREN={self.children}",
            "-A",
            f"FLIREO_DEBUG={self.debug}",
            "-A",
            f'FLIREO_CTL="unix:{self.ctl_path}"',
        ]

    def start(self, timeout_s: float = 20.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited:\n{self.logs()[-4000:]}")
            if options_ping(self.host, self.port, 0.3) == 200:
                return
        raise RuntimeError(f"kamailio did not answer OPTIONS:\n{self.logs()[-4000:]}")

    def states(self) -> dict[str, str]:
        """Dispatcher state of each destination (``sip:host:port`` → flags such as
        ``AP`` active+probing, ``IP`` inactive+probing), from ``kamcmd dispatcher.list``."""
        out = subprocess.run(
            [KAMCMD, "-s", f"unix:{self.ctl_path}", "dispatcher.list"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        return dict(re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", out))

    def active(self, host: str, port: int) -> bool | None:
        flags = self.states().get(f"sip:{host}:{port}")
        return None if flags is None else flags.startswith("A")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# ======================================================================================
# workers
# ======================================================================================
class Worker(LiveServer):
    """One ``flireo serve`` of the cluster, on its own loopback address."""

    def __init__(self, data_dir: Path, *, index: int, sip_host: str, env: dict[str, str]) -> None:
        self.index = index
        self.sip_host = sip_host
        self.node_id = f"w{index}-{uuid.uuid4().hex[:8]}"
        port = free_udp_port(sip_host)
        super().__init__(
            data_dir,
            env={
                **env,
                "FLIREO_NODE_ID": self.node_id,
                "FLIREO_SIP_HOST": sip_host,
                "FLIREO_SIP_PORT": str(port),
            },
        )
        self.sip_port = port
        self.exit_code: int | None = None

    @property
    def sip_address(self) -> tuple[str, int]:
        return self.sip_host, self.sip_port

    def terminate(self) -> None:
        """SIGTERM: the worker drains (contract: 503 to new calls, live calls run on)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout_s: float) -> int | None:
        assert self.proc is not None
        try:
            self.exit_code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def worker_env(database_url: str, redis_url: str, secret_key: str) -> dict[str, str]:
    """What every worker of one cluster shares."""
    return {
        "FLIREO_DATABASE_URL": database_url,
        "FLIREO_BUS": "redis",
        "FLIREO_REDIS_URL": redis_url,
        "FLIREO_SECRET_KEY": secret_key,
        "FLIREO_NODE_HEARTBEAT_TTL_S": "6",
        "FLIREO_DRAIN_TIMEOUT_S": "120",
        "FLIREO_LOG_LEVEL": "info",
        "FLIREO_INITIAL_MINUTES_BALANCE": "1000000",
        "FLIREO_DEFAULT_MAX_OUTBOUND_CALLS": "1000",
        "FLIREO_DEFAULT_DAILY_OUTBOUND_MINUTES": "100000",
        "FLIREO_SIP_RING_TIMEOUT_SECONDS": "20",
        # different loopback addresses: the same RTP range on each
        "FLIREO_RTP_PORT_MIN": "21000",
        "FLIREO_RTP_PORT_MAX": "29999",
    }


# ======================================================================================
# the cluster
# ======================================================================================
@dataclass
class Cluster:
    """Kamailio + N workers + a fresh PostgreSQL database; call :meth:`start`."""

    workdir: Path
    postgres_admin_url: str
    redis_url: str
    size: int = 3
    llm_url: str = ""
    llm_key: str = "sk-fake-openai"
    carrier: tuple[str, int] | None = None
    kamailio_options: dict[str, Any] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    kamailio: Kamailio | None = None
    db: PostgresDatabase | None = None
    api_key: str | None = None
    #: ids the provisioning created
    ids: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.db = PostgresDatabase(self.postgres_admin_url)
        self.db.create()
        secret = base64.b64encode(os.urandom(32)).decode()
        env = {**worker_env(self.db.url, self.redis_url, secret), **self.extra_env}
        self.workers = [
            Worker(self.workdir / f"worker{i}", index=i, sip_host=f"127.0.0.{i + 2}", env=env)
            for i in range(self.size)
        ]
        self.kamailio = Kamailio(self.workdir / "kamailio", **self.kamailio_options)
        self.kamailio.write_list(
            [(w.sip_host, w.sip_port, w.node_id) for w in self.workers], self.carrier
        )
        # the first worker migrates the database and prints the API key; the trunk
        # (Kamailio's address, exempt from the INVITE flood ban) must exist before
        # the other workers read the trunk addresses at start
        first = self.workers[0]
        first.start()
        self.api_key = first.api_key
        assert self.api_key, f"no API key in the first worker's log:\n{first.logs()[-3000:]}"
        self.provision()
        first.stop()
        for worker in self.workers:
            worker.api_key = self.api_key
            worker.proc = None
        self._start_workers(self.workers)
        self.kamailio.start()
        self.wait_dispatching()

    def _start_workers(self, workers: list[Worker]) -> None:
        procs = []
        for worker in workers:  # start them together (each takes seconds to import)
            worker.data_dir.mkdir(parents=True, exist_ok=True)
            procs.append(worker)
            log = worker.log_path.open("ab")
            worker.proc = subprocess.Popen(
                [sys.executable, "-m", "flireo.cli", "serve"],
                env=worker.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for worker in procs:
            self.wait_healthy(worker)

    def wait_healthy(self, worker: Worker, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        assert worker.proc is not None
        while time.monotonic() < deadline:
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker {worker.index} exited:\n{worker.logs()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                healthy = httpx.get(worker.url + "/healthz", timeout=1).status_code == 200
                if healthy and options_ping(*worker.sip_address, 0.5) == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"worker {worker.index} did not start:\n{worker.logs()[-3000:]}")

    def restart(self, worker: Worker) -> None:
        """Start a stopped (or killed) worker again with the same node id and ports."""
        assert not worker.running
        self._start_workers([worker])

    def wait_dispatching(self, timeout_s: float = 30.0) -> None:
        """Until Kamailio has seen every running worker answer its probes."""
        deadline = time.monotonic() + timeout_s
        assert self.kamailio is not None
        while time.monotonic() < deadline:
            if all(self.kamailio.active(*w.sip_address) for w in self.workers if w.running):
                return
            time.sleep(0.3)
        raise RuntimeError(
            f"Kamailio did not see every worker up: {self.kamailio.states()}\n"
            f"{self.kamailio.logs()[-3000:]}"
        )

    def provision(self) -> None:
        """Fake-LLM key, the trunk at Kamailio's address, a silent agent and its number."""
        assert self.kamailio is not None
        trunk: dict[str, Any] = {"name": "kamailio", "host": self.kamailio.host}
        trunk["port"] = self.kamailio.port
        with self.client(self.workers[0]) as api:
            if self.llm_url:
                api.post("/byok", json={"provider": "openai", "api_key": self.llm_key})
            r = api.post("/sip-trunks", json=trunk)
            r.raise_for_status()
            self.ids["trunk"] = r.json()["sip_trunk"]["id"]
            r = api.post(
                "/agents",
                json={
                    "name": "Cluster agent",
                    "stt_config": {"provider": "whisper", "language": "en"},
                    "llm_config": {
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "base_url": self.llm_url or "http://127.0.0.1:9/v1",
                        "messages": [{"role": "system", "content": "You are a receptionist."}],
                    },
                    "tts_config": {"provider": "piper"},
                },
            )
            r.raise_for_status()
            self.ids["agent"] = r.json()["agent"]["id"]
            r = api.post(
                "/numbers",
                json={
                    "phone_number": INBOUND_NUMBER,
                    "name": "Cluster",
                    "agent_id": self.ids["agent"],
                    "transfer_trunk_id": self.ids["trunk"],
                },
            )
            r.raise_for_status()
            self.ids["number"] = r.json()["number"]["id"]

    def client(self, worker: Worker) -> httpx.Client:
        assert self.api_key
        return httpx.Client(
            base_url=worker.api, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def stop(self) -> None:
        for worker in self.workers:
            if worker.running:
                assert worker.proc is not None
                worker.proc.send_signal(signal.SIGTERM)
                worker.proc.send_signal(signal.SIGTERM)  # a second one: stop at once
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                try:
                    worker.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.proc.kill()
                    worker.proc.wait()
        if self.kamailio is not None:
            self.kamailio.stop()
        if self.db is not None:
            self.db.drop()

    def worker_at(self, host: str) -> Worker:
        return next(w for w in self.workers if w.sip_host == host)

    def logs(self) -> str:
        parts = [f"--- kamailio ---\n{self.kamailio.logs()[-3000:] if self.kamailio else ''}"]
        for w in self.workers:
            parts.append(f"--- worker {w.index} ({w.node_id}) ---\n{w.logs()[-3000:]}")
        return "\n".join(parts)


# ======================================================================================
# the API
# ======================================================================================
def calls(cluster: Cluster, worker: Worker, **params: Any) -> list[dict[str, Any]]:
    """Every call of the organization, through ``worker``'s API."""
    out: list[dict[str, Any]] = []
    with cluster.client(worker) as api:
        while True:
            r = api.get("/calls", params={**params, "limit": 100, "offset": len(out)})
            r.raise_for_status()
            page = r.json()
            out += page["calls"]
            if len(out) >= page["pagination"]["total"] or not page["calls"]:
                return out


def ended_calls(cluster: Cluster, worker: Worker, n: int) -> list[dict[str, Any]] | None:
    """The ended calls once there are ``n`` of them."""
    ended = calls(cluster, worker, status="ended")
    return ended if len(ended) == n else None


def wait_for(what: str, check: Any, timeout_s: float, cluster: Cluster) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{cluster.logs()}")


# ======================================================================================
# sipp
# ======================================================================================
_UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="caller through kamailio">
  <send retrans="500" start_rtd="setup">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:+31612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: sipp
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true" rtd="setup"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      From: "Caller" <sip:+31612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{body}</scenario>
"""

_HANG_UP = """{media}  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      From: "Caller" <sip:+31612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""

_WAIT_FOR_BYE = """{media}  <recv request="BYE" timeout="{hold_ms}"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def uac_scenario(
    path: Path, *, hold_ms: int, stream: Path | None = None, wait_for_bye: bool = False
) -> Path:
    """INVITE → 200 → ACK → [``stream`` as RTP] → hold → BYE (or: wait up to
    ``hold_ms`` for the far end's BYE and answer it)."""
    media = f'  <nop><action><exec rtp_stream="{stream},-1,0"/></action></nop>\n' if stream else ""
    body = (_WAIT_FOR_BYE if wait_for_bye else _HANG_UP).format(media=media, hold_ms=hold_ms)
    path.write_text(_UAC.replace("{body}", body))
    return path


_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A carrier behind Kamailio: answers every INVITE (100, 180, 200 with SDP and
     Kamailio's Record-Route), waits for the ACK, stays on the line {min_ms}-{max_ms}
     ms, then hangs up with a BYE routed back through Kamailio. -->
<scenario name="carrier behind kamailio">
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      SIP/2.0 100 Trying
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callee 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16

    ]]>
  </send>
  <recv request="ACK"/>
  <pause distribution="uniform" min="{min_ms}" max="{max_ms}"/>
  <send>
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: [$callee];tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def uas_scenario(path: Path, *, min_ms: int = 300, max_ms: int = 1500) -> Path:
    path.write_text(_UAS.replace("{min_ms}", str(min_ms)).replace("{max_ms}", str(max_ms)))
    return path


def silence_ulaw(path: Path, seconds: float = 1.0) -> Path:
    """Headerless 8 kHz μ-law silence for sipp's ``rtp_stream`` (see bench/sip_load.py)."""
    path.write_bytes(b"\xff" * int(8000 * seconds))
    return path


@dataclass
class SippResult:
    calls: int
    successful: int
    failed: int
    exit_code: int | None
    setup_s: list[float]
    #: the worker (SIP host) that answered each call, from the 200 OK's Contact
    answered_by: Counter[str]
    messages: str
    errors: str

    def p95_setup_s(self) -> float | None:
        if not self.setup_s:
            return None
        ordered = sorted(self.setup_s)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(0.95 * len(ordered)) - 1))]


class SippCaller:
    """sipp placing ``calls`` calls at ``rate`` per second through Kamailio."""

    def __init__(
        self,
        workdir: Path,
        kamailio: tuple[str, int],
        *,
        calls: int,
        rate: float,
        hold_ms: int,
        number: str = INBOUND_NUMBER,
        stream: Path | None = None,
        wait_for_bye: bool = False,
        trace: bool = True,
        limit: int | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.calls = calls
        self.timeout_s = calls / rate + hold_ms / 1000 + 60
        scenario = uac_scenario(
            workdir / "uac.xml", hold_ms=hold_ms, stream=stream, wait_for_bye=wait_for_bye
        )
        self.args = [
            SIPP,
            f"{kamailio[0]}:{kamailio[1]}",
            "-sf",
            str(scenario),
            "-s",
            number,
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port("127.0.0.1")),
            "-mp",
            str(free_udp_port("127.0.0.1")),
            "-t",
            "u1",
            "-r",
            f"{rate:g}",
            "-rp",
            "1000",
            "-m",
            str(calls),
            "-l",
            str(limit or calls),
            "-nostdin",
            "-recv_timeout",
            "15000",
            "-timeout",
            f"{math.ceil(self.timeout_s)}s",
            "-timeout_error",
            "-trace_stat",
            "-stf",
            str(workdir / "stat.csv"),
            "-fd",
            "1",
            "-trace_rtt",
            "-rtt_freq",
            "1",
            "-trace_err",
            "-error_file",
            str(workdir / "errors.log"),
        ]
        if trace:
            self.args += ["-trace_msg", "-message_file", str(workdir / "messages.log")]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SippCaller:
        with (self.workdir / "output.log").open("wb") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TERM": "dumb"},
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def answered_so_far(self) -> Counter[str]:
        return answered_by(read(self.workdir / "messages.log"))

    def wait(self, timeout_s: float | None = None) -> SippResult:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout_s or self.timeout_s + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.result()

    def result(self) -> SippResult:
        assert self.proc is not None
        stat = self.workdir / "stat.csv"
        rows = list(csv.reader(read(stat).splitlines(), delimiter=";"))
        successful = failed = 0
        if len(rows) >= 2:
            last = dict(zip(rows[0], rows[-1], strict=False))
            successful = int(last.get("SuccessfulCall(C)") or 0)
            failed = int(last.get("FailedCall(C)") or 0)
        setup: list[float] = []
        for path in self.workdir.glob("*_rtt.csv"):
            for line in read(path).splitlines():
                parts = line.split(";")
                if len(parts) >= 3 and parts[-1].strip() == "setup":
                    with contextlib.suppress(ValueError):
                        setup.append(float(parts[-2]) / 1000)
        messages = read(self.workdir / "messages.log")
        return SippResult(
            calls=self.calls,
            successful=successful,
            failed=failed,
            exit_code=self.proc.returncode,
            setup_s=setup,
            answered_by=answered_by(messages),
            messages=messages,
            errors=read(self.workdir / "errors.log")[-3000:],
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def trace_blocks(messages: str, direction: str) -> list[str]:
    """Messages sipp ``received``/``sent`` in a ``-trace_msg`` file."""
    out = []
    for block in re.split(r"\n(?=-{10,} )", "\n" + messages):
        head, _, rest = block.strip("\n").partition("\n")
        what, _, message = rest.partition("\n")
        if f"message {direction}" in what or f"message {direction}" in head:
            out.append((message if f"message {direction}" in what else rest).lstrip("\n"))
    return out


def answered_by(messages: str) -> Counter[str]:
    """SIP host of the worker in the Contact of each distinct call's 200 OK to INVITE."""
    seen: dict[str, str] = {}
    for message in trace_blocks(messages, "received"):
        cseq = message.split("CSeq", 1)[-1][:40]
        if not message.startswith("SIP/2.0 200") or "INVITE" not in cseq:
            continue
        contact = _CONTACT.search(message)
        call_id = _CALL_ID.search(message)
        if contact and call_id:
            seen.setdefault(call_id.group(1), contact.group(1))
    return Counter(seen.values())


class SippCarrier:
    """sipp as the carrier behind Kamailio (dispatcher set 2): answers every call."""

    def __init__(self, workdir: Path, *, min_ms: int = 300, max_ms: int = 1500) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_udp_port("127.0.0.1")
        self.args = [
            SIPP,
            "-sf",
            str(uas_scenario(workdir / "uas.xml", min_ms=min_ms, max_ms=max_ms)),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-mp",
            str(free_udp_port("127.0.0.1")),
            "-t",
            "u1",
            "-m",
            "1000000",
            "-nostdin",
            "-timeout",
            "900s",
            "-recv_timeout",
            "20000",
            # 200 to Kamailio's OPTIONS probes, as a carrier answers them (the
            # dispatcher probes set 2 too and takes a silent carrier out)
            "-aa",
            # a call whose worker died just ends (no BYE retried into nowhere)
            "-default_behaviors",
            "none",
            "-trace_msg",
            "-message_file",
            str(workdir / "messages.log"),
            "-trace_err",
            "-error_file",
            str(workdir / "errors.log"),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> SippCarrier:
        with (self.workdir / "output.log").open("wb") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TERM": "dumb"},
            )
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                except OSError:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"sipp carrier did not start: {read(self.workdir / 'output.log')}")

    def stop(self) -> str:
        """SIGTERM (sipp writes out its trace), then the trace."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return read(self.workdir / "messages.log")


_INVITE_TO = re.compile(r"^INVITE sip:([^@;>]+)@", re.MULTILINE)


def invites_per_number(messages: str) -> dict[str, set[str]]:
    """Distinct Call-IDs of the INVITEs the carrier received, per dialed number
    (retransmissions of one INVITE count once)."""
    out: dict[str, set[str]] = {}
    for message in trace_blocks(messages, "received"):
        number = _INVITE_TO.match(message)
        call_id = _CALL_ID.search(message)
        if number and call_id:
            out.setdefault(number.group(1), set()).add(call_id.group(1))
    return out


_ROUTED = re.compile(r"\{1 1 INVITE (\S+)\} .*?(?:to worker|retried on worker) sip:([0-9.]+):(\d+)")


def kamailio_routes(log: str) -> dict[str, str]:
    """SIP Call-ID → the worker (host) Kamailio last sent the call's INVITE to,
    from its log lines (the cfg's log_prefix carries the Call-ID)."""
    out: dict[str, str] = {}
    for match in _ROUTED.finditer(log):
        out[match.group(1)] = match.group(2)
    return out
