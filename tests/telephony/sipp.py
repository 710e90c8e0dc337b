"""Running sipp (Debian ``sip-tester``) as the far end of a test call.

``Sipp.start(...)`` launches one sipp process on a free loopback port with a
scenario from ``scenarios/``, its message trace and error log under the
test's tmp dir; ``wait()`` returns its exit code (0: every call passed) and
the fixture kills whatever is still running at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (sipp may use either)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def port_taken(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class SippRun:
    name: str
    port: int
    process: asyncio.subprocess.Process
    workdir: Path
    args: list[str] = field(default_factory=list)

    @property
    def messages(self) -> str:
        path = self.workdir / f"{self.name}_messages.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def output(self) -> str:
        path = self.workdir / f"{self.name}_output.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def errors(self) -> str:
        path = self.workdir / f"{self.name}_errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def received(self, start: str) -> list[str]:
        """Messages sipp received whose first line starts with ``start``."""
        return [m for m in self._logged("received") if m.startswith(start)]

    def sent(self, start: str) -> list[str]:
        return [m for m in self._logged("sent") if m.startswith(start)]

    def _logged(self, direction: str) -> list[str]:
        out = []
        for block in re.split(r"\n-{10,}[^\n]*\n", "\n" + self.messages):
            head, _, body = block.partition("\n")
            if f"message {direction}" in head:
                out.append(body.lstrip("\n"))
        return out

    async def wait(self, limit_s: float = 30.0) -> int:
        try:
            await asyncio.wait_for(self.process.wait(), limit_s)
        except TimeoutError:
            self.kill()
            await self.process.wait()
            raise AssertionError(f"sipp {self.name} still running after {limit_s}s") from None
        return int(self.process.returncode or 0)

    def explain(self) -> str:
        return (
            f"sipp {' '.join(self.args)}\n--- errors ---\n{self.errors[-4000:]}\n"
            f"--- messages ---\n{self.messages[-8000:]}"
        )

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


def _log_file(path: Path) -> BinaryIO:
    return path.open("wb")


class Sipp:
    """Launches sipp processes for one test; ``close()`` kills leftovers."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.runs: list[SippRun] = []

    async def start(
        self,
        scenario: str,
        *,
        remote: tuple[str, int] | None = None,
        transport: str = "u1",
        service: str = "flireo",
        calls: int = 1,
        extra: list[str] | None = None,
        port: int | None = None,
    ) -> SippRun:
        """Start sipp: a client scenario when ``remote`` is given (it calls
        there), else a server waiting on ``run.port``."""
        port = port or free_port()
        name = f"{Path(scenario).stem}-{len(self.runs)}"
        args = [
            *([f"{remote[0]}:{remote[1]}"] if remote else []),
            "-sf",
            str(SCENARIOS / scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            transport,
            "-s",
            service,
            "-m",
            str(calls),
            "-nostdin",
            "-timeout",
            "25s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(self.workdir / f"{name}_errors.log"),
            "-trace_msg",
            "-message_file",
            str(self.workdir / f"{name}_messages.log"),
            "-nr",  # we test our retransmissions elsewhere; keep sipp's simple
            *(extra or []),
        ]
        with _log_file(self.workdir / f"{name}_output.log") as output:
            process = await asyncio.create_subprocess_exec(
                SIPP,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, "TERM": "dumb"},
            )
        run = SippRun(name, port, process, self.workdir, args)
        self.runs.append(run)
        if remote is None:  # a server: wait until it listens
            kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
            for _ in range(200):
                if port_taken(port, kind) or process.returncode is not None:
                    break
                await asyncio.sleep(0.02)
            if process.returncode is not None:
                raise AssertionError(
                    f"sipp exited at start ({process.returncode}): {run.output[-2000:]}"
                )
        return run

    async def close(self) -> None:
        for run in self.runs:
            run.kill()
        for run in self.runs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.process.wait(), 5)
