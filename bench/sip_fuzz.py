"""The long SIP parser fuzz run: the properties of ``tests/telephony/test_sip_fuzz.py``
with random seeds and many more examples, plus a plain random mutation loop
over the RFC 4475 corpus and a typical call's messages, and the parser's speed.

Then the PROTOS c07-sip style INVITE cases (``tests/telephony/protos.py``; no
package ships the original suite) against a real ``flireo serve`` process on
loopback (SQLite in a temporary data dir, an agent and a number provisioned
over the REST API, so valid INVITEs go through admission, SDP/SRTP negotiation
and the call set-up): after every case an OPTIONS must be answered, the server
process must stay up, and no case may get a 500.

Run: ``.venv/bin/python bench/sip_fuzz.py`` (a few minutes; ``--scale 0.1`` for
a quick look, ``--seed N`` to replay; ``--protos-only`` for the server run
alone, merged into the existing results). Prints the counts and writes
``bench/results/sip_fuzz.json``. Exits 1 on the first property violation,
unexpected exception, or server crash, printing the input that caused it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
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
from tests.telephony.protos import cases as protos_cases  # noqa: E402

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


_KEY = re.compile(r"flk_[A-Za-z0-9]{40}")
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_CALL_ID = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.I | re.M)
PROTOS_NUMBER = "+31850835037"


def _free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
        with socket.socket() as tcp, contextlib.suppress(OSError):
            tcp.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port")


def _options(n: int, port: int, source_port: int) -> tuple[bytes, bytes]:
    call_id = f"ping-{n}@127.0.0.1".encode()
    return call_id, (
        f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{source_port};branch=z9hG4bK-ping-{n};rport\r\n"
        f"From: <sip:ping@127.0.0.1>;tag=ping-{n}\r\nTo: <sip:ping@127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id.decode()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def protos_live() -> dict[str, Any]:
    """The PROTOS-style INVITE cases against ``flireo serve`` (see the module)."""
    import httpx

    work = Path(tempfile.mkdtemp(prefix="flireo-protos-"))
    port, sip_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "FLIREO_DATA_DIR": str(work / "data"),
        "FLIREO_HOST": "127.0.0.1",
        "FLIREO_PORT": str(port),
        "FLIREO_SIP_HOST": "127.0.0.1",
        "FLIREO_SIP_PORT": str(sip_port),
        "FLIREO_SIP_INVITE_LIMIT": "100000000",  # the flood ban would stop the run
        "FLIREO_RATE_LIMIT_PER_MINUTE": "100000",
        "FLIREO_ALLOW_PRIVATE_URLS": "1",
        "FLIREO_RTP_PORT_MIN": "41000",
        "FLIREO_RTP_PORT_MAX": "44999",
    }
    log_path = work / "server.log"
    flireo = Path(sys.executable).parent / "flireo"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(flireo), "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def logs() -> str:
        return log_path.read_text(errors="replace")

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cleanup = False
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"flireo serve exited:\n{logs()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                    break
            time.sleep(0.1)
        keys = _KEY.findall(logs())
        assert keys, "no API key in the server's first-start output"
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {keys[0]}"},
            timeout=30,
        )
        # an agent whose hosted LLM has no key: valid INVITEs are admitted, their SDP
        # negotiated, and the set-up refused (503) before any conversation starts
        r = api.post(
            "/agents",
            json={"name": "protos", "llm_config": {"provider": "openai", "model": "gpt-4o-mini"}},
        )
        r.raise_for_status()
        agent_id = r.json()["agent"]["id"]
        api.post(
            "/numbers", json={"phone_number": PROTOS_NUMBER, "agent_id": agent_id}
        ).raise_for_status()
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.002)
        source_port = sock.getsockname()[1]
        seen: dict[bytes, set[int]] = {}  # Call-ID → the statuses it got (not retransmissions)
        kinds: Counter[str] = Counter()
        worst_ms = 0.0
        all_cases = list(
            protos_cases(
                user=PROTOS_NUMBER, host="127.0.0.1", port=sip_port, source_port=source_port
            )
        )
        started = time.perf_counter()
        for n, (kind, name, datagram) in enumerate(all_cases):
            kinds[kind] += 1
            sock.sendto(datagram, ("127.0.0.1", sip_port))
            ping_id, ping = _options(n, sip_port, source_port)
            t0 = time.perf_counter()
            sock.sendto(ping, ("127.0.0.1", sip_port))
            answered = False
            while time.perf_counter() - t0 < 10 and not answered:
                try:
                    data = sock.recv(70_000)
                except TimeoutError:
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"flireo serve died on case {kind} {name}:\n{logs()[-3000:]}"
                        ) from None
                    continue
                status, call_id = _STATUS.match(data), _CALL_ID.search(data)
                if not status or not call_id:
                    continue
                if call_id.group(1) == ping_id:
                    answered = status.group(1) == b"200"
                else:
                    seen.setdefault(call_id.group(1), set()).add(int(status.group(1)))
            if not answered:
                raise RuntimeError(f"no OPTIONS answer after case {kind} {name}")
            worst_ms = max(worst_ms, (time.perf_counter() - t0) * 1000)
        seconds = time.perf_counter() - started
        time.sleep(1.0)
        with contextlib.suppress(TimeoutError):
            while True:
                data = sock.recv(70_000)
                status = _STATUS.match(data)
                call_id = _CALL_ID.search(data)
                if status and call_id and not call_id.group(1).startswith(b"ping-"):
                    seen.setdefault(call_id.group(1), set()).add(int(status.group(1)))
        statuses: Counter[int] = Counter(code for got in seen.values() for code in got)
        errors = logs().count("[error")
        if statuses.get(500):
            raise RuntimeError(f"{statuses[500]} cases got a 500:\n{logs()[-3000:]}")
        if proc.poll() is not None:
            raise RuntimeError(f"flireo serve exited:\n{logs()[-3000:]}")
        result = {
            "source": "generated (no Debian or PyPI package ships the PROTOS c07-sip cases)",
            "cases": len(all_cases),
            "classes": dict(kinds),
            "seconds": round(seconds, 1),
            "responses_to_cases": {str(k): v for k, v in sorted(statuses.items())},
            "options_answered_after_every_case": True,
            "worst_options_round_trip_ms": round(worst_ms, 1),
            "server_errors_logged": errors,
            "server_alive": True,
        }
        print(
            f"  {'protos_invite_live':32} {len(all_cases):8d} cases     {seconds:6.1f} s  {result}"
        )
        cleanup = True  # the server's log stays behind only when the run failed
        return result
    finally:
        sock.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if cleanup:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"  the server's log: {log_path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every budget")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--examples", type=int, default=5_000, help="hypothesis examples per unit")
    ap.add_argument("--iterations", type=int, default=200_000, help="plain mutation inputs")
    ap.add_argument(
        "--protos-only",
        action="store_true",
        help="only the PROTOS-style cases against flireo serve (merged into the results)",
    )
    args = ap.parse_args()
    if args.protos_only:
        print("PROTOS c07-sip style INVITE cases against flireo serve")
        report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        started = time.perf_counter()
        try:
            report["protos_invite_live"] = protos_live()
        except BaseException as exc:
            traceback.print_exc()
            report["protos_invite_live"] = {"result": "FAILED", "failure": str(exc)[:2000]}
            _write(report, started, keep_seconds=True)
            return 1
        _write(report, started, keep_seconds=True)
        print(f"passed; wrote {RESULTS.relative_to(ROOT)}")
        return 0
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
        report["protos_invite_live"] = protos_live()
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


def _write(report: dict[str, Any], started: float, *, keep_seconds: bool = False) -> None:
    if not keep_seconds:
        report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
