"""The WebRTC transport on its own, between two aiortc peers in this process: the
browser's audio reaches the engine's sink as 16 kHz 20 ms frames on the shared
pacer, agent audio is paced out in real time (``played_samples``/``queued_samples``),
``clear()`` drops what is queued at once (barge-in), the recorder gets both sides,
and hanging up closes the connection and stops the recorder."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection

from flireo.clock import SystemClock
from flireo.engine.transport import RemoteHangup
from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE
from flireo.recordings.capture import CallRecorder
from flireo.webcall.transport import WebRtcTransport
from tests.services.test_call_runner import until
from tests.webcall.caller import WavMicrophone, record


def tone(seconds: float, hz: float = 440.0, level: float = 8000.0) -> bytes:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * hz * t) * level).astype(np.int16).tobytes()


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


async def connected_pair(
    caller_pcm: bytes,
) -> tuple[RTCPeerConnection, WebRtcTransport, list[bytes], list[float]]:
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    browser.addTrack(WavMicrophone(caller_pcm))
    heard: list[bytes] = []
    first: list[float] = []
    readers: list[asyncio.Task[None]] = []

    @browser.on("track")
    def _track(track: MediaStreamTrack) -> None:
        readers.append(asyncio.create_task(record(track, heard, first)))

    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transport = WebRtcTransport(server, SystemClock(), media_timeout_s=2.0)
    server.on("track", transport.receive)
    await browser.setLocalDescription(await browser.createOffer())
    await server.setRemoteDescription(browser.localDescription)
    server.addTrack(transport.track)
    await server.setLocalDescription(await server.createAnswer())
    await browser.setRemoteDescription(server.localDescription)
    await until(lambda: server.connectionState == "connected", within=10, what="ICE/DTLS")
    return browser, transport, heard, first


async def test_audio_both_ways_pacing_barge_in_recording_and_hangup(tmp_path: Path) -> None:
    caller = tone(1.0, 300.0) + bytes(SAMPLE_RATE * 2 * 4)
    browser, transport, heard, _ = await connected_pair(caller)
    frames: list[bytes] = []
    recorder = CallRecorder(format="wav", work_dir=tmp_path)
    transport.attach_recorder(recorder)
    listening = asyncio.create_task(transport.listen(frames.append))
    try:
        await until(lambda: len(frames) >= 75, within=10, what="1.5 s of caller frames")
        assert all(len(f) == FRAME_BYTES for f in frames)
        assert max(rms(f) for f in frames) > 2000  # the tone came through Opus at 16 kHz

        await transport.send(tone(2.0, 600.0))
        assert transport.queued_samples == 2 * SAMPLE_RATE
        await asyncio.sleep(0.5)
        played = transport.played_samples
        # paced in real time, not sent at once: some played, the rest still queued
        assert 0 < played < 2 * SAMPLE_RATE
        assert transport.queued_samples == 2 * SAMPLE_RATE - played
        transport.pause_output(True)  # caller speech over the agent: held, not dropped
        held_at = transport.played_samples
        await asyncio.sleep(0.3)
        assert transport.played_samples == held_at
        assert transport.queued_samples == 2 * SAMPLE_RATE - held_at
        transport.pause_output(False)  # a backchannel: it goes on
        await until(lambda: transport.played_samples > held_at, within=2, what="the agent going on")
        transport.pause_output(True)
        transport.clear()  # barge-in (a hold ends with it)
        assert transport.queued_samples == 0
        at_clear = transport.played_samples
        await asyncio.sleep(0.3)
        assert transport.played_samples == at_clear  # nothing more after the clear
        await until(lambda: rms(b"".join(heard)) > 500, within=5, what="agent audio at the peer")

        await transport.hangup()
        await asyncio.wait_for(listening, 5)
        assert transport.pc.connectionState == "closed"
        assert recorder.stopped
    finally:
        await browser.close()
        await transport.hangup()
    audio = await recorder.finish()
    assert audio is not None
    with wave.open(str(audio.stereo_path), "rb") as w:
        assert (w.getnchannels(), w.getframerate()) == (2, SAMPLE_RATE)
        stereo = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    assert rms(stereo[:, 0].tobytes()) > 200  # the caller's tone, left
    assert rms(stereo[:, 1].tobytes()) > 200  # the agent's tone, right
    audio.cleanup()


async def test_a_peer_that_stops_sending_is_a_remote_hangup() -> None:
    browser, transport, _, _ = await connected_pair(bytes(SAMPLE_RATE * 2))
    listening = asyncio.create_task(transport.listen(lambda _: None))
    try:
        # the browser stops sending without a word (no DTLS close, no ICE failure yet)
        for sender in browser.getSenders():
            await sender.stop()
        events = []
        async with asyncio.timeout(8):  # media_timeout_s is 2 here
            async for event in transport.events():
                events.append(event)
        assert events == [RemoteHangup("customer-ended-call")]
        await asyncio.wait_for(listening, 5)
    finally:
        await browser.close()
        await transport.hangup()
