"""A long schemathesis run against a live server, on SQLite and on PostgreSQL
(CI runs a shorter one: tests/live/test_schemathesis.py).

    nice -n 10 .venv/bin/python bench/schemathesis_long.py [--max-examples 400]
        [--backend sqlite|postgres|both]

Every check of schemathesis, stateful links included (tests/live/schemathesis.toml).
The case count grows less than linearly with --max-examples (the stateful phase
adds a share that does not scale): 25 made ~8,300 cases on SQLite, 100 made
~9,900; the default 400 aims at the 30,000-case target per backend (the JSON says
whether a run reached it). PostgreSQL needs FLIREO_TEST_POSTGRES_URL (an admin URL: a throwaway
database is created and dropped). Prints, per backend, the generated case count,
the failures and the server errors (5xx responses, tracebacks in the server log),
and writes bench/results/schemathesis_long.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live.test_schemathesis import run_schemathesis, server_for  # noqa: E402

TARGET_CASES = 30_000


def run(backend: str, max_examples: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, server_for(backend, Path(tmp)) as server:
        started = time.monotonic()
        cases, failures = run_schemathesis(
            server, max_examples=max_examples, workers=workers, timeout=6 * 3600
        )
        elapsed = time.monotonic() - started
        server.stop()
        logs = server.logs()
    result: dict[str, Any] = {
        "max_examples": max_examples,
        "generated_cases": cases,
        "target_cases": TARGET_CASES,
        "seconds": round(elapsed, 1),
        "failures": bool(failures),
        "server_errors": logs.count("Traceback") + logs.count('" 500 '),
    }
    if failures:
        result["failure_report"] = failures[-20_000:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    out = ROOT / "bench" / "results" / "schemathesis_long.json"
    # one backend per run may be written at a time: keep the other backend's result
    try:
        previous = json.loads(out.read_text())
    except (OSError, ValueError):
        previous = {}
    results: dict[str, Any] = {k: v for k, v in previous.items() if k in ("sqlite", "postgres")}
    ok = True
    for backend in backends:
        result = run(backend, args.max_examples, args.workers)
        results[backend] = result
        print(backend, json.dumps({k: v for k, v in result.items() if k != "failure_report"}))
        if result["failures"]:
            print(result["failure_report"])
        ok = ok and not result["failures"] and not result["server_errors"]
        ok = ok and result["generated_cases"] >= TARGET_CASES
        out.parent.mkdir(parents=True, exist_ok=True)
        try:  # a run of the other backend at the same time may have written meanwhile
            latest = json.loads(out.read_text())
        except (OSError, ValueError):
            latest = {}
        merged = {k: v for k, v in latest.items() if k in ("sqlite", "postgres")}
        merged[backend] = result
        out.write_text(json.dumps(merged, indent=2) + "\n")  # after each backend
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
