"""A browser stand-in for web-call tests and the benchmark: an aiortc peer that
calls an agent through ``POST /calls/web``, plays a 16 kHz WAV as its microphone
(in real time, as Opus) and records what the agent says.

Run as a process (so a test can make it vanish with SIGKILL)::

    python -m tests.webcall.caller --api URL --key KEY --agent ID --wav caller.wav \
        [--out received.wav] [--seconds 30] [--calls N --report calls.json --stagger S]

Each call prints one JSON line ``{"call_id": ...}`` once it is set up, then runs
until ``--seconds`` have passed, when it hangs up by closing its connection.
``--report`` writes, per call, its id and the ``time.monotonic()`` at which the
first agent audio arrived (the benchmark compares it with the server's send time).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import sys
import time
import wave
from pathlib import Path

import av
import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

RATE = 16_000
FRAME = 320  # 20 ms


class WavMicrophone(MediaStreamTrack):
    """A 16 kHz mono WAV as a live microphone: 20 ms frames in real time, then silence."""

    kind = "audio"

    def __init__(self, pcm: bytes) -> None:
        super().__init__()
        self._pcm = pcm
        self._pos = 0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._pcm[self._pos : self._pos + FRAME * 2]
        self._pos += FRAME * 2
        chunk += bytes(FRAME * 2 - len(chunk))
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(chunk)
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        frame.pts = self._pts
        self._pts += FRAME
        return frame


async def record(track: MediaStreamTrack, out: list[bytes], first: list[float]) -> None:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    try:
        while True:
            frame = await track.recv()
            for f in resampler.resample(frame):  # type: ignore[arg-type]
                pcm = f.to_ndarray().astype(np.int16).tobytes()
                if not first and np.abs(np.frombuffer(pcm, np.int16)).max() > 500:
                    first.append(time.monotonic())
                out.append(pcm)
    except MediaStreamError:
        return


async def call(
    api: str, key: str, agent_id: str, pcm: bytes, seconds: float, out_path: Path | None
) -> dict[str, object]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(WavMicrophone(pcm))
    received: list[bytes] = []
    first_audio: list[float] = []
    recorders: list[asyncio.Task[None]] = []

    connected: list[float] = []

    @pc.on("connectionstatechange")
    def _state() -> None:
        if pc.connectionState == "connected" and not connected:
            connected.append(time.monotonic())

    @pc.on("track")
    def _track(track: MediaStreamTrack) -> None:
        recorders.append(asyncio.create_task(record(track, received, first_audio)))

    await pc.setLocalDescription(await pc.createOffer())
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}) as c:
        r = await c.post("/calls/web", json={"agent_id": agent_id, "sdp": pc.localDescription.sdp})
    if r.status_code != 201:
        print(json.dumps({"error": r.status_code, "body": r.text}), flush=True)
        sys.exit(1)
    body = r.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
    print(json.dumps({"call_id": body["call"]["id"]}), flush=True)
    await asyncio.sleep(seconds)
    frames = len(received)
    await pc.close()
    for task in recorders:
        task.cancel()
    if out_path is not None:
        with wave.open(str(out_path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(b"".join(received))
        meta = {"first_audio_s": first_audio[0] - started if first_audio else None}
        out_path.with_suffix(".json").write_text(json.dumps(meta))
    return {
        "call_id": body["call"]["id"],
        "first_audio_at": first_audio[0] if first_audio else None,
        "connected_at": connected[0] if connected else None,
        "frames_received": frames,
    }


async def calls(args: argparse.Namespace, pcm: bytes) -> None:
    async def one(i: int) -> dict[str, object]:
        await asyncio.sleep(i * args.stagger)
        return await call(args.api, args.key, args.agent, pcm, args.seconds, args.out)

    results = await asyncio.gather(*(one(i) for i in range(args.calls)))
    if args.report is not None:
        args.report.write_text(json.dumps(results))


def read_wav(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return w.readframes(w.getnframes())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--wav", type=Path, required=True)
    p.add_argument("--out", type=Path)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--calls", type=int, default=1)
    p.add_argument("--report", type=Path)
    p.add_argument("--stagger", type=float, default=0.0, help="seconds between call starts")
    a = p.parse_args()
    asyncio.run(calls(a, read_wav(a.wav)))


if __name__ == "__main__":
    main()
