"""A real ``flireo serve`` process for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

from flireo.store.db import Database
from tests.fakes.server import free_port

KEY_RE = re.compile(r"flk_[A-Za-z0-9]{40}")


class LiveServer:
    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        #: the SIP listener (UDP and TCP) of this server
        self.sip_port = free_port()
        self.log_path = data_dir / "server.log"
        self.env = {
            **os.environ,
            "FLIREO_DATA_DIR": str(data_dir / "data"),
            "FLIREO_HOST": "127.0.0.1",
            "FLIREO_PORT": str(self.port),
            "FLIREO_ALLOW_PRIVATE_WEBHOOKS": "1",
            "FLIREO_RATE_LIMIT_PER_MINUTE": "100000",
            # schemathesis sends many requests with missing or wrong keys on purpose
            "FLIREO_AUTH_FAILURES_PER_MINUTE": "100000",
            "FLIREO_SIP_HOST": "127.0.0.1",
            "FLIREO_SIP_PORT": str(self.sip_port),
            "FLIREO_RTP_PORT_MIN": "30000",
            "FLIREO_RTP_PORT_MAX": "40000",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_key: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a ``flireo`` CLI command against the same data/database."""
        return subprocess.run(
            [sys.executable, "-m", "flireo.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flireo.cli", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flireo serve exited:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"flireo serve did not start:\n{self.logs()[-3000:]}")
        keys = KEY_RE.findall(self.logs())
        if keys and self.api_key is None:
            self.api_key = keys[0]

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def headers(self) -> dict[str, str]:
        assert self.api_key, "no API key captured"
        return {"Authorization": f"Bearer {self.api_key}"}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class PostgresDatabase:
    """A throwaway database on the test PostgreSQL server (for live servers)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"flireo_live_{uuid.uuid4().hex[:10]}"
        self.url = f"{admin_url.rsplit('/', 1)[0]}/{self.name}"

    def _run(self, sql: str) -> None:
        async def go() -> None:
            db = Database(self.admin_url, isolation_level="AUTOCOMMIT")
            try:
                async with db.engine.connect() as conn:
                    await conn.execute(text(sql))
            finally:
                await db.dispose()

        asyncio.run(go())

    def create(self) -> None:
        self._run(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
