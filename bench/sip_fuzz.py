"""The long SIP parser fuzz run: the properties of ``tests/telephony/test_sip_fuzz.py``
with random seeds and many more examples, plus a plain random mutation loop
over the RFC 4475 corpus and a typical call's messages, and the parser's speed.

Run: ``.venv/bin/python bench/sip_fuzz.py`` (a few minutes; ``--scale 0.1`` for
a quick look, ``--seed N`` to replay). Prints the counts and writes
``bench/results/sip_fuzz.json``. Exits 1 on the first property violation or
unexpected exception, printing the input that caused it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the strategies live with the tests

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tests.telephony import test_sip_fuzz as fz  # noqa: E402

from flireo.telephony.sip.message import frame_length, parse  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sip_fuzz.json"


def _inner(test: Any) -> Callable[..., None]:
    """The body of a ``@given`` test, to run under other settings."""
    fn: Callable[..., None] = test.hypothesis.inner_test
    return fn


Check = Callable[[bytes], str]


def _both(check_a: Check, check_b: Check) -> Check:
    def run(data: bytes) -> str:
        check_b(data)
        return check_a(data)

    return run


def _ok(fn: Callable[..., None]) -> Callable[..., str]:
    def run(*args: Any) -> str:
        fn(*args)
        return "ok"

    return run


# name, strategies, check (returns an outcome label), share of the example budget
PROPERTIES: list[tuple[str, tuple[Any, ...], Callable[..., str], float]] = [
    ("random_bytes", (st.binary(max_size=4000),), _both(fz.check_parse, fz.check_frame), 1.0),
    ("mutated_messages", (fz.mutated(),), _both(fz.check_parse, fz.check_frame), 3.0),
    (
        "generated_messages_round_trip",
        (fz.valid_message(),),
        _ok(_inner(fz.test_generated_valid_messages_round_trip)),
        1.0,
    ),
    ("sip_uri_round_trip", (fz.sip_uri(),), _ok(_inner(fz.test_sip_uris_round_trip)), 0.5),
    ("name_addr_round_trip", (fz.name_addr(),), _ok(_inner(fz.test_name_addrs_round_trip)), 0.5),
    ("via_round_trip", (fz.via(),), _ok(_inner(fz.test_vias_round_trip)), 0.5),
    (
        "header_value_parsers",
        (fz.header_like,),
        _ok(_inner(fz.test_header_value_parsers_raise_only_sip_parse_errors)),
        1.0,
    ),
    ("sdp", (fz.sdp_body,), fz.check_sdp, 1.0),
    ("digest_headers", (fz.digest_header,), fz.check_digest, 1.0),
    (
        "digest_round_trip",
        (fz.secretish, fz.secretish, fz.secretish, st.floats(0, 1e9)),
        _ok(_inner(fz.test_digest_round_trip_accepts_exactly_the_right_password)),
        0.3,
    ),
]


def run_property(
    name: str, strategies: tuple[Any, ...], check: Callable[..., str], examples: int, seed: int
) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.tuples(*strategies))
    def prop(args: tuple[Any, ...]) -> None:
        outcomes[check(*args)] += 1

    start = time.perf_counter()
    prop()
    seconds = time.perf_counter() - start
    total = sum(outcomes.values())
    print(f"  {name:32} {total:8d} examples  {seconds:6.1f} s  {dict(outcomes)}")
    return {"examples": total, "seconds": round(seconds, 2), "outcomes": dict(outcomes)}


INTERESTING = fz.INTERESTING


def mutate(rng: random.Random, data: bytes) -> bytes:
    """The byte-level mutations of ``test_sip_fuzz.mutated``, without hypothesis."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.randrange(7)
        pos = rng.randint(0, len(buf))
        if kind == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= rng.randint(1, 255)
        elif kind == 1:
            del buf[pos:]
        elif kind == 2:
            buf[pos:pos] = rng.choice(INTERESTING)
        elif kind == 3:
            buf[pos : pos + rng.randint(1, 12)] = rng.choice(INTERESTING)
        elif kind == 4:
            lines = bytes(buf).split(b"\r\n")
            if len(lines) > 2:
                i = rng.randint(1, len(lines) - 1)
                lines[i:i] = [lines[i]] * rng.choice([1, 2, 50])
                buf = bytearray(b"\r\n".join(lines))
        elif kind == 5:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        else:
            del buf[pos : pos + rng.randint(1, 64)]
    return bytes(buf)


def mutation_loop(iterations: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    parse_outcomes: Counter[str] = Counter()
    frame_outcomes: Counter[str] = Counter()
    start = time.perf_counter()
    for i in range(iterations):
        data = mutate(rng, rng.choice(fz.SEEDS))
        try:
            parse_outcomes[fz.check_parse(data)] += 1
            frame_outcomes[fz.check_frame(data)] += 1
        except BaseException:
            print(f"\nFAILED on mutation {i} (seed {seed}): {data!r}")
            raise
    seconds = time.perf_counter() - start
    print(
        f"  {'random_mutation_loop':32} {iterations:8d} inputs    {seconds:6.1f} s  "
        f"parse {dict(parse_outcomes)} frame {dict(frame_outcomes)}"
    )
    return {
        "inputs": iterations,
        "seconds": round(seconds, 2),
        "parse": dict(parse_outcomes),
        "frame_length": dict(frame_outcomes),
    }


def speed() -> dict[str, float]:
    """µs per call for a typical INVITE with SDP (median of 5 runs)."""
    invite = fz._typical_messages()[0]

    def per_call(fn: Callable[[], object], n: int = 5000) -> float:
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter() - start) / n * 1e6)
        return round(sorted(runs)[2], 2)

    msg = parse(invite)
    result = {
        "parse_invite_us": per_call(lambda: parse(invite)),
        "parse_invite_stream_us": per_call(lambda: parse(invite, stream=True)),
        "frame_length_us": per_call(lambda: frame_length(invite, 65536)),
        "serialize_invite_us": per_call(msg.serialize),
        "typed_views_us": per_call(lambda: (msg.from_, msg.to, msg.cseq, msg.vias)),
    }
    print(f"  speed: {result}")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every budget")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--examples", type=int, default=5_000, help="hypothesis examples per unit")
    ap.add_argument("--iterations", type=int, default=200_000, help="plain mutation inputs")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"SIP parser fuzz run, seed {seed}")
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seed": seed,
        "corpus": {"seed_messages": len(fz.SEEDS), "rfc4475_messages": 49},
        "properties": {},
    }
    try:
        for name, strategies, check, share in PROPERTIES:
            examples = max(1, int(args.examples * share * args.scale))
            report["properties"][name] = run_property(name, strategies, check, examples, seed)
        report["random_mutation_loop"] = mutation_loop(
            max(1, int(args.iterations * args.scale)), seed
        )
    except BaseException as exc:  # a property violation or a crash: report and fail
        traceback.print_exc()
        report["failure"] = f"{type(exc).__name__}: {exc}"[:2000]
        report["result"] = "FAILED"
        _write(report, started)
        return 1
    report["speed"] = speed()
    total = sum(p["examples"] for p in report["properties"].values())
    total += report["random_mutation_loop"]["inputs"]
    report["total_inputs"] = total
    report["unexpected_exceptions"] = 0
    report["result"] = "passed"
    _write(report, started)
    print(f"passed: {total} inputs, no unexpected exception; wrote {RESULTS.relative_to(ROOT)}")
    return 0


def _write(report: dict[str, Any], started: float) -> None:
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
