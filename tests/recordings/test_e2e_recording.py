"""The issue's "done when": sipp calls a real ``flireo serve`` (agent on the fake LLM,
local Whisper and Piper) with a Piper-made caller WAV: a question, then, while the
agent gives a long answer, an interruption. After the hang-up the end-of-call
report's ``stereoRecordingUrl`` is downloaded WITHOUT the API key and checked:
two channels, its length within 1 s of the call's, the caller's speech on the left
in the window sipp sent it, the agent's words on the right (local Whisper), and the
barge-in cut as silence on the right after the interruption. Once as WAV on the
local disk, once as Ogg/Opus through the S3 back-end (moto's server)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import time
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flireo.media.frames import SAMPLE_RATE
from tests.calls.phone import NUMBER, ulaw_wav
from tests.calls.scenarios import caller_streams
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import serve
from tests.live.server import LiveServer
from tests.recordings.fixtures import ACCESS_KEY, SECRET_KEY, MotoServer, moto_server
from tests.speech import speak, transcribe, words
from tests.telephony.sipp import SIPP, free_port

__all__ = ["moto_server"]

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

QUESTION = "What are your opening hours?"
INTERRUPTION = "Sorry, wait, please stop for a moment."
#: long enough to be still speaking when the caller interrupts; its end is never heard
LONG_ANSWER = (
    "Our opening hours are from nine in the morning until five in the afternoon on "
    "weekdays. On Saturdays we open a little later, at ten, and we close at four in the "
    "afternoon. On Sundays the practice is closed, and on public holidays you can leave "
    "a message on our answering machine, which we listen to every morning at eight."
)
#: the caller starts this long after the answer (the greeting has played by then)
CALLER_DELAY_S = 5.0
#: between the question and the interruption (the long answer is playing then)
GAP_S = 8.0


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key="sk-fake-openai")
    with serve(fake.app()) as srv:
        fake.url = f"{srv.url}/v1"
        yield fake


@pytest.fixture(scope="module")
def hooks() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A customer's webhook receiver: (its URL, the bodies it received)."""
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return Response("ok")

    with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as srv:
        yield f"{srv.url}/hook", received


def start_server(workdir: Path, env: dict[str, str]) -> LiveServer:
    base = {"FLIREO_ALLOW_PRIVATE_URLS": "1", **env}
    for attempt in range(3):
        live = LiveServer(workdir / f"server{attempt}", env=base)
        try:
            live.start()
            return live
        except RuntimeError as error:
            live.stop()
            if "address already in use" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def set_up_agent(server: LiveServer, fake: FakeOpenAI, hook_url: str, fmt: str) -> None:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(server.api + path, json=body, headers=server.headers, timeout=30)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    post("/byok", {"provider": "openai", "api_key": fake.api_key})
    agent = post(
        "/agents",
        {
            "name": "Front desk",
            "first_message": "Hello, this is Anna.",
            "stt_config": {"provider": "whisper", "language": "en"},
            "llm_config": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake.url,
                "messages": [{"role": "system", "content": "You are a receptionist."}],
            },
            "tts_config": {"provider": "piper"},
            "webhook_url": hook_url,
            "webhook_events": ["end-of-call-report"],
            "recordingFormat": fmt,
        },
    )["agent"]
    assert agent["recording_enabled"] is True
    trunk = post("/sip-trunks", {"name": "carrier", "host": "127.0.0.1"})["sip_trunk"]
    post(
        "/numbers",
        {"phone_number": NUMBER, "agent_id": agent["id"], "transfer_trunk_id": trunk["id"]},
    )


def caller_wav(workdir: Path) -> tuple[Path, list[tuple[float, float]]]:
    """The caller's side (question, silence, interruption) and its voiced stretches."""
    question = asyncio.run(speak(QUESTION))
    interruption = asyncio.run(speak(INTERRUPTION))
    pcm = question + bytes(int(GAP_S * SAMPLE_RATE) * 2) + interruption
    sent = segments(voiced(np.frombuffer(pcm, dtype="<i2")))
    return ulaw_wav(pcm, workdir / "caller.wav"), sent


def place_call(server: LiveServer, workdir: Path, wav: Path) -> None:
    scenario = caller_streams(
        workdir / "caller.xml", wav, delay_ms=int(CALLER_DELAY_S * 1000), hold_ms=19_000
    )
    log = workdir / "sipp.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [
                SIPP,
                f"127.0.0.1:{server.sip_port}",
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-t",
                "u1",
                "-s",
                NUMBER,
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "60s",
                "-timeout_error",
                "-nr",
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=90,
            check=False,
        )
    assert done.returncode == 0, log.read_text(errors="replace")


def wait_for_report(received: list[dict[str, Any]], within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for body in received:
            if body["message"]["type"] == "end-of-call-report":
                return dict(body["message"])
        time.sleep(0.2)
    raise AssertionError("no end-of-call report")


def decode(data: bytes, content_type: str) -> tuple[int, np.ndarray, np.ndarray]:
    """(channels, left, right) at 16 kHz s16 from a WAV or an Ogg/Opus file."""
    if content_type == "audio/wav":
        with wave.open(io.BytesIO(data), "rb") as w:
            assert (w.getframerate(), w.getsampwidth()) == (SAMPLE_RATE, 2)
            channels = w.getnchannels()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, channels)
        return channels, pcm[:, 0], pcm[:, -1]
    assert content_type == "audio/ogg"
    with av.open(io.BytesIO(data), format="ogg") as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=SAMPLE_RATE)
        parts = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1, 2))
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1, 2))
    pcm = np.concatenate(parts)
    return channels, pcm[:, 0], pcm[:, 1]


def voiced(track: np.ndarray) -> np.ndarray:
    """Per 20 ms frame: is there speech in it (RMS above a whisper)?"""
    n = track.size - track.size % 320
    frames = track[:n].astype(np.float64).reshape(-1, 320)
    return np.sqrt((frames**2).mean(axis=1)) > 300


def share(flags: np.ndarray, start_s: float, end_s: float) -> float:
    part = flags[int(start_s * 50) : int(end_s * 50)]
    return float(part.mean()) if part.size else 0.0


def first_voiced(flags: np.ndarray, after_s: float) -> float:
    tail = flags[int(after_s * 50) :]
    assert tail.any(), f"nothing voiced after {after_s} s"
    return (int(after_s * 50) + int(np.argmax(tail))) / 50


def longest_silence(flags: np.ndarray, start_s: float, end_s: float) -> tuple[float, float]:
    """(start, length) of the longest unvoiced run within the window, in seconds."""
    best, run_start, best_start = 0, None, start_s
    lo, hi = int(start_s * 50), min(int(end_s * 50), flags.size)
    for i in range(lo, hi):
        if not flags[i]:
            run_start = i if run_start is None else run_start
            if i - run_start + 1 > best:
                best, best_start = i - run_start + 1, run_start / 50
        else:
            run_start = None
    return best_start, best / 50


def segments(flags: np.ndarray) -> list[tuple[float, float]]:
    """Voiced stretches (start, end) in seconds, gaps under 0.3 s joined (for messages)."""
    out: list[tuple[float, float]] = []
    for i in np.flatnonzero(flags):
        t = i / 50
        if out and t - out[-1][1] < 0.3:
            out[-1] = (out[-1][0], t + 0.02)
        else:
            out.append((t, t + 0.02))
    return out


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def call_and_check(
    workdir: Path,
    env: dict[str, str],
    fmt: str,
    fake: FakeOpenAI,
    hooks: tuple[str, list[dict[str, Any]]],
) -> None:
    hook_url, received = hooks
    received.clear()
    wav, sent = caller_wav(workdir)
    server = start_server(workdir, env)
    try:
        set_up_agent(server, fake, hook_url, fmt)
        fake.enqueue(Reply.say(LONG_ANSWER))
        fake.enqueue(Reply.say("Of course, take your time."))
        place_call(server, workdir, wav)
        report = wait_for_report(received)

        url = report["stereoRecordingUrl"]
        assert url, report
        assert url.startswith(server.url + "/api/v1/calls/"), report
        assert report["recordings"]["linkStereo"] == url
        assert report["recordingUrl"]
        assert "recordingError" not in report
        # the customer's webhook handler downloads it: no API key
        r = httpx.get(url, timeout=30)
        assert r.status_code == 200, r.text
        content_type = "audio/wav" if fmt == "wav" else "audio/ogg"
        assert r.headers["content-type"] == content_type
        channels, left, right = decode(r.content, content_type)
        assert channels == 2
        seconds = left.size / SAMPLE_RATE
        call = httpx.get(
            f"{server.api}/calls/{report['call']['id']}", headers=server.headers, timeout=30
        ).json()
        assert call["stereo_recording_url"]
        call_s = (parse(call["ended_at"]) - parse(call["started_at"])).total_seconds()
        assert abs(seconds - call_s) < 1.0, (seconds, call_s)
        assert abs(call["recording_duration_seconds"] - seconds) < 0.1

        caller, agent = voiced(left), voiced(right)
        timeline = f"left {segments(caller)} right {segments(agent)}"
        # the caller: silent until sipp started, then each stretch sipp sent in its window
        assert share(caller, 0.3, CALLER_DELAY_S - 0.3) < 0.05, timeline
        asked = first_voiced(caller, 0.3)
        assert abs(asked - (CALLER_DELAY_S + sent[0][0])) < 0.6, timeline
        offset = asked - sent[0][0]
        expected = np.zeros_like(caller)
        for start, end in sent:
            assert share(caller, offset + start, offset + end) > 0.3, timeline
            expected[max(0, int((offset + start - 0.3) * 50)) : int((offset + end + 0.3) * 50)] = 1
        assert caller[expected == 0].mean() < 0.03, timeline  # nothing outside those windows
        interruption = next(start for start, _ in sent if start > sent[0][1] + 2.0)
        interrupted = first_voiced(caller, offset + interruption - 1.0)
        assert abs(interrupted - (offset + interruption)) < 0.5, timeline
        # the agent: greeting and answer on the right, the answer playing when cut
        assert share(agent, 0.0, asked) * asked >= 0.5, timeline  # the greeting
        assert share(agent, interrupted - 1.5, interrupted) > 0.3, timeline
        cut_at, quiet_s = longest_silence(agent, interrupted, interrupted + 3.0)
        assert quiet_s >= 0.8, (cut_at, quiet_s, timeline)
        assert cut_at - interrupted < 2.0, timeline
        heard = set(words(asyncio.run(transcribe(right.astype("<i2").tobytes()))))
        assert {"anna", "opening", "hours"} <= heard, heard
        assert not {"answering", "machine", "eight"} <= heard, heard  # never said: cut off
        assert share(caller, 0.0, seconds) < 0.6  # the right channel is not on the left
    finally:
        server.stop()


def test_a_sipp_call_is_recorded_in_stereo_wav_on_the_local_disk(
    tmp_path: Path, fake_llm: FakeOpenAI, hooks: tuple[str, list[dict[str, Any]]]
) -> None:
    call_and_check(tmp_path, {}, "wav", fake_llm, hooks)
    files = sorted(p.name for p in (tmp_path / "server0/data/recordings").rglob("*.wav"))
    assert len(files) == 2


def test_a_sipp_call_is_recorded_in_ogg_through_s3(
    tmp_path: Path,
    fake_llm: FakeOpenAI,
    hooks: tuple[str, list[dict[str, Any]]],
    moto_server: MotoServer,
) -> None:
    bucket = moto_server.bucket()
    env = {
        "FLIREO_RECORDINGS_URL": f"s3://{bucket}/flireo",
        "FLIREO_RECORDINGS_S3_ENDPOINT": moto_server.endpoint,
        "FLIREO_RECORDINGS_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "FLIREO_RECORDINGS_S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    call_and_check(tmp_path, env, "ogg", fake_llm, hooks)
    keys = moto_server.keys(bucket)
    assert len(keys) == 2
    assert all(k.startswith("flireo/") and k.endswith(".ogg") for k in keys), keys
