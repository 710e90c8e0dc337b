"""The README's quickstart works, verbatim, against a live server."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx

from tests.live.server import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_script() -> str:
    text = README.read_text()
    match = re.search(r"<!-- quickstart -->\s*```sh\n(.*?)```", text, re.S)
    assert match, "README.md has no <!-- quickstart --> sh block"
    return match.group(1)


def test_readme_quickstart_runs_against_a_live_server(live_server: LiveServer) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", quickstart_script()],
        env={
            **os.environ,
            "FLIREO_URL": live_server.url,
            "FLIREO_API_KEY": live_server.api_key or "",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1000"  # the first organization's free minutes
    assert lines[1].startswith("agent: ")
    assert "+31850835037" in lines
    assert "'total': 0" in lines[-1]
    agents = httpx.get(live_server.api + "/agents", headers=live_server.headers).json()["agents"]
    assert agents[0]["first_message"].startswith("Hello, thanks for calling Acme")


def test_first_start_prints_one_key_and_docs_are_served(live_server: LiveServer) -> None:
    assert live_server.logs().count("flk_") == 1
    assert httpx.get(live_server.url + "/docs").status_code == 200
    spec = httpx.get(live_server.api + "/openapi.json").json()
    assert spec["info"]["title"] == "Flireo API"
    live_server.stop()
    live_server.start()  # a restart on the same database creates nothing new
    assert live_server.logs().count("flk_") == 1
    assert httpx.get(live_server.api + "/account", headers=live_server.headers).status_code == 200
