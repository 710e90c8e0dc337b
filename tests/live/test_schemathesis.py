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
from pathlib import Path

import pytest

from tests.fakes.resend import FakeResend
from tests.fakes.server import serve
from tests.live.server import LiveServer

CONFIG = Path(__file__).with_name("schemathesis.toml")
MIN_CASES = 2000


# One worker by default: schemathesis' workers are threads, and on CPython 3.11.7
# `ast.parse` (which hypothesis calls to describe lambdas) keeps its recursion
# depth in process-wide state, so two threads parsing at once can fail with
# "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905).
def run_schemathesis(server: LiveServer, *, max_examples: int, workers: int = 1) -> tuple[int, str]:
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
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    match = re.search(r"(\d+) generated", output)
    if result.returncode == 0:
        return (int(match.group(1)) if match else 0), ""
    failures = re.search(r"=+ FAILURES =+(.*?)=+ (WARNINGS|SUMMARY) =+", output, re.S)
    return (int(match.group(1)) if match else 0), failures.group(1) if failures else output


@pytest.fixture
def api_under_test(tmp_path: Path) -> Iterator[LiveServer]:
    fake = FakeResend(api_key="re_schemathesis_0001")
    with serve(fake.app()) as resend:
        server = LiveServer(tmp_path, env={"FLIREO_RESEND_BASE_URL": resend.url})
        server.start()
        try:
            yield server
        finally:
            server.stop()


def test_schemathesis_finds_nothing(api_under_test: LiveServer) -> None:
    cases, failures = run_schemathesis(api_under_test, max_examples=25)
    assert not failures, failures
    assert cases >= MIN_CASES
    assert "Traceback" not in api_under_test.logs()
