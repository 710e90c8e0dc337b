"""Fixtures of the recordings' storage and API tests (imported by those modules).

``moto`` runs as its own process (``python -m moto.server``) on a free loopback
port: the S3 back-end talks to it over the real S3 wire protocol, and a test can
stop it (S3 down) and start it again on the same port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from flireo.media.frames import SAMPLE_RATE
from flireo.recordings.storage import S3Storage

ACCESS_KEY, SECRET_KEY = "testing-access", "testing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("moto server exited at start")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def bucket(self, name: str | None = None) -> str:
        """A new empty bucket."""
        name = name or f"rec-{uuid.uuid4().hex[:10]}"
        r = httpx.put(f"{self.endpoint}/{name}", timeout=5)
        assert r.status_code == 200, r.text
        return name

    def storage(self, bucket: str, prefix: str = "recordings") -> S3Storage:
        return S3Storage(
            bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            region="us-east-1",
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )

    def keys(self, bucket: str) -> list[str]:
        r = httpx.get(f"{self.endpoint}/{bucket}?list-type=2", timeout=5)
        r.raise_for_status()
        import re

        return sorted(re.findall(r"<Key>([^<]+)</Key>", r.text))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_moto_server() -> Iterator[MotoServer]:
    """A moto server of this test alone (the test stops and restarts it)."""
    server = MotoServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tone(seconds: float, freq: float, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2")


def write_wav(path: Path, left: np.ndarray, right: np.ndarray | None = None) -> Path:
    """A 16 kHz s16le WAV: stereo when ``right`` is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if right is None else 2)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        frames = left if right is None else np.stack([left, right], axis=1).reshape(-1)
        w.writeframes(frames.astype("<i2").tobytes())
    return path
