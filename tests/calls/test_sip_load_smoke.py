"""The SIP load bench (``bench/sip_load.py``) still runs: a real ``flireo serve``
process, provisioned over its API, takes a few sipp calls at a low rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.sip_load import SILENT_NUMBER, running_server, setup_step

pytestmark = pytest.mark.sipp


def test_load_bench_calls_flireo_serve_and_every_call_succeeds(tmp_path: Path) -> None:
    with running_server(tmp_path / "server", log_level="warning") as server:
        step = setup_step(
            server, tmp_path / "calls", number=SILENT_NUMBER, rate=5, calls=5, hold_ms=500
        )
    assert (step["successful"], step["failed"]) == (5, 0), step.get("sipp_errors")
    assert step["setup_ms"]["measured"] == 5
    # the probe saw the gateway's RTP: comfort silence went out on every call
    assert step["rtp"]["packets_sent"] >= 5 * 500 // 20 // 2
    assert step["drain_s"] < 60
