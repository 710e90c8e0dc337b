"""``--start-server``: a ``flireo serve`` of our own on free ports with a temporary data dir."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

__all__ = ["StartedServer", "free_port"]

_KEY = re.compile(r"flk_[A-Za-z0-9]{40}")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StartedServer:
    """``python -m flireo.cli serve`` on loopback; its first-start API key read from its output.

    It runs with ``FLIREO_ALLOW_PRIVATE_URLS=1`` (the agent under test may use an LLM or
    tool servers on this machine) and keeps its log in ``log_path`` for a failed run.
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="flireo-test-"))
        self.port = free_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.log_path = self.dir / "server.log"
        self.env = {
            **os.environ,
            "FLIREO_DATA_DIR": str(self.dir / "data"),
            "FLIREO_DATABASE_URL": f"sqlite+aiosqlite:///{self.dir / 'flireo.db'}",
            "FLIREO_HOST": "127.0.0.1",
            "FLIREO_PORT": str(self.port),
            "FLIREO_SIP_HOST": "127.0.0.1",
            "FLIREO_SIP_PORT": str(self.sip_port),
            "FLIREO_ALLOW_PRIVATE_URLS": "1",
            "FLIREO_RATE_LIMIT_PER_MINUTE": "100000",
            "FLIREO_LOG_JSON": "0",
            **(env or {}),
        }
        for name in ("FLIREO_API_KEY", "FLIREO_SECRET_KEY", "FLIREO_URL"):
            self.env.pop(name, None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_key = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sip(self) -> tuple[str, int]:
        return "127.0.0.1", self.sip_port

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, timeout_s: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - starts at once, waits for nothing
                [sys.executable, "-m", "flireo.cli", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with httpx.AsyncClient(timeout=1) as http:
            while loop.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"flireo serve exited:\n{self.logs()[-2000:]}")
                try:
                    if (await http.get(self.url + "/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"flireo serve did not start:\n{self.logs()[-2000:]}")
        keys = _KEY.findall(self.logs())
        if not keys:
            raise RuntimeError("flireo serve showed no first-start API key")
        self.api_key = keys[0]

    async def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
