"""``deploy/local-cluster`` for real: Kamailio in front of two ``flireo serve``
workers on 127.0.0.2 and 127.0.0.3, a fresh PostgreSQL database and Redis.

The script reports ready with Kamailio's address, each worker's SIP address and
API URL, and the key the first worker printed; Kamailio and each worker answer
OPTIONS, each worker's API answers with the key (and sees the trunk at Kamailio's
address the script added, in the shared database); SIGTERM drains the workers,
stops Kamailio and the script exits 0 with nothing left listening.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.cluster.conftest import cluster_services
from tests.cluster.kamailio import ROOT, free_udp_port, options_ping
from tests.live.server import PostgresDatabase

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SCRIPT = ROOT / "deploy" / "local-cluster"
WORKER_LINE = re.compile(r"^worker (\d+)  node (\S+)  sip:([0-9.]+):(\d+)  api (\S+)", re.M)
KAMAILIO_LINE = re.compile(r"^kamailio  sip:([0-9.]+):(\d+)", re.M)
KEY_LINE = re.compile(r"^API key   (flk_[A-Za-z0-9]{40})", re.M)


def port_free_on(hosts: list[str]) -> int:
    """A port free for UDP and TCP on every one of ``hosts``."""
    for _ in range(200):
        port = free_udp_port(hosts[0])
        ok = True
        for host in hosts:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind((host, port))
                    except OSError:
                        ok = False
        if ok:
            return port
    raise RuntimeError(f"no port free on all of {hosts}")


class Output:
    """The script's stdout and stderr, read as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.text = ""
        self._lock = threading.Lock()
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.text += line

    def wait_for(self, pattern: str, proc: subprocess.Popen[str], timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if re.search(pattern, self.text, re.M):
                return self.text
            if proc.poll() is not None:
                self._thread.join(timeout=5)  # the last lines
                if re.search(pattern, self.text, re.M):
                    return self.text
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} from deploy/local-cluster:\n{self.text[-4000:]}")


def test_local_cluster_script_starts_serves_and_stops(tmp_path: Path) -> None:
    pg, redis = cluster_services()
    db = PostgresDatabase(pg)
    db.create()
    hosts = ["127.0.0.2", "127.0.0.3"]
    kamailio_port = free_udp_port("127.0.0.1")
    sip_port = port_free_on(hosts)
    api_port = port_free_on(hosts)
    workdir = tmp_path / "cluster"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--workers",
            "2",
            "--database-url",
            db.url,
            "--redis-url",
            redis,
            "--workdir",
            str(workdir),
            "--kamailio-port",
            str(kamailio_port),
            "--sip-port",
            str(sip_port),
            "--api-port",
            str(api_port),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        text = out.wait_for(r"^ready: 2 workers", proc, 180)

        # --- what it reports --------------------------------------------------------------
        kamailio = KAMAILIO_LINE.search(text)
        assert kamailio, text
        assert (kamailio.group(1), int(kamailio.group(2))) == ("127.0.0.1", kamailio_port)
        workers = WORKER_LINE.findall(text)
        assert [(w[0], w[2], int(w[3])) for w in workers] == [
            ("1", "127.0.0.2", sip_port),
            ("2", "127.0.0.3", sip_port),
        ], text
        assert [w[4] for w in workers] == [f"http://{h}:{api_port}" for h in hosts]
        key = KEY_LINE.search(text)
        assert key, text
        api_key = key.group(1)

        # --- SIP: Kamailio and every worker answer ------------------------------------------
        assert options_ping("127.0.0.1", kamailio_port) == 200
        for host in hosts:
            assert options_ping(host, sip_port) == 200, host

        # --- every worker's API, with the key, on the shared database -----------------------
        for url in (w[4] for w in workers):
            assert httpx.get(f"{url}/api/v1/sip-trunks", timeout=10).status_code == 401
            r = httpx.get(
                f"{url}/api/v1/sip-trunks",
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            assert [(t["host"], t["port"]) for t in r.json()["trunks"]] == [
                ("127.0.0.1", kamailio_port)
            ]

        # --- SIGTERM: the workers drain and exit, then Kamailio ---------------------------
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, out.text[-4000:]
        took = time.monotonic() - started
        text = out.wait_for(r"^kamailio stopped", proc, 5)
        assert "worker 1 exited with code 0" in text
        assert "worker 2 exited with code 0" in text
        assert took < 60, took  # no call to wait for: no drain timeout
        assert options_ping("127.0.0.1", kamailio_port, 0.3) is None
        for host in hosts:
            assert options_ping(host, sip_port, 0.3) is None, host
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{host}:{api_port}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # its children get SIGTERM (PR_SET_PDEATHSIG)
                proc.wait()
        db.drop()
