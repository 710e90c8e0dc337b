"""Property-based API testing with schemathesis against a live server: every
check of schemathesis 4 (no 5xx, responses match the schema, documented status
codes and headers, schema-invalid input rejected...), with the few exemptions
listed and explained in schemathesis.toml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.db import postgres_url
from tests.fakes.resend import FakeResend
from tests.fakes.server import serve
from tests.live.server import LiveServer, PostgresDatabase

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: examples per operation and the cases that makes at least, per backend (PostgreSQL
#: gets a shorter run: CI time; bench/schemathesis_long.py runs both long)
EXAMPLES = {"sqlite": 25, "postgres": 8}
MIN_CASES = {"sqlite": 2000, "postgres": 600}


# One worker by default: schemathesis' workers are threads, and on CPython 3.11.7
# `ast.parse` (which hypothesis calls to describe lambdas) keeps its recursion
# depth in process-wide state, so two threads parsing at once can fail with
# "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905).
def run_schemathesis(
    server: LiveServer, *, max_examples: int, workers: int = 1, timeout: float = 900
) -> tuple[int, str]:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is not installed in this environment"
    result = subprocess.run(
        [
            exe,
            "--config-file",
            str(CONFIG),
            "run",
            server.api + "/openapi.json",
            "-H",
            f"Authorization: Bearer {server.api_key}",
            "--max-examples",
            str(max_examples),
            "--workers",
            str(workers),
            "--seed",
            "20261125",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    match = re.search(r"(\d+) generated", output)
    if result.returncode == 0:
        return (int(match.group(1)) if match else 0), ""
    failures = re.search(r"=+ FAILURES =+(.*?)=+ (WARNINGS|SUMMARY) =+", output, re.S)
    return (int(match.group(1)) if match else 0), failures.group(1) if failures else output


@contextmanager
def server_for(backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server on SQLite or on a fresh PostgreSQL database, with a fake Resend."""
    env: dict[str, str] = {}
    pg: PostgresDatabase | None = None
    if backend == "postgres":
        url = postgres_url()
        if not url:
            skip_or_fail("FLIREO_TEST_POSTGRES_URL is not set")
            raise AssertionError("unreachable")
        pg = PostgresDatabase(url)
        pg.create()
        env["FLIREO_DATABASE_URL"] = pg.url
    fake = FakeResend(api_key="re_schemathesis_0001")
    try:
        with serve(fake.app()) as resend:
            server = LiveServer(tmp_path, env={**env, "FLIREO_RESEND_BASE_URL": resend.url})
            server.start(timeout=180)  # a busy CI machine starts it slowly
            try:
                yield server
            finally:
                server.stop()
    finally:
        if pg is not None:
            pg.drop()


def check_backend(backend: str, tmp_path: Path) -> None:
    with server_for(backend, tmp_path) as server:
        cases, failures = run_schemathesis(server, max_examples=EXAMPLES[backend])
        assert not failures, failures
        assert cases >= MIN_CASES[backend]
        assert "Traceback" not in server.logs()


# PostgreSQL's run is tests/live/test_schemathesis_postgres.py: a file of its own, so that
# the suite's workers (one test file each at a time) run the two at once.
@pytest.mark.timeout(900)  # minutes on a busy machine; the run itself is bounded at 900 s
def test_schemathesis_finds_nothing_on_sqlite(tmp_path: Path) -> None:
    check_backend("sqlite", tmp_path)
