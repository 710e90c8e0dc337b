"""A long schemathesis run against a live server (CI runs a shorter one).

    .venv/bin/python bench/schemathesis_long.py [--max-examples 200]

Prints the generated case count and the outcome and writes
bench/results/schemathesis_long.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.resend import FakeResend  # noqa: E402
from tests.fakes.server import serve  # noqa: E402
from tests.live.server import LiveServer  # noqa: E402
from tests.live.test_schemathesis import run_schemathesis  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    fake = FakeResend(api_key="re_bench_0001")
    with serve(fake.app()) as resend, tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp), env={"FLIREO_RESEND_BASE_URL": resend.url})
        server.start()
        started = time.monotonic()
        try:
            cases, failures = run_schemathesis(
                server, max_examples=args.max_examples, workers=args.workers
            )
        finally:
            server.stop()
        elapsed = time.monotonic() - started
        server_errors = server.logs().count("Traceback")
    result = {
        "max_examples": args.max_examples,
        "generated_cases": cases,
        "seconds": round(elapsed, 1),
        "failures": bool(failures),
        "server_tracebacks": server_errors,
    }
    print(json.dumps(result, indent=2))
    if failures:
        print(failures)
    out = ROOT / "bench" / "results" / "schemathesis_long.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failures or server_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
