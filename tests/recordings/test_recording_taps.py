"""The recording taps in the media path: a real RtpSession pair over loopback (the
SIP transport, a barge-in cut, a DTMF digit, a bridged transfer) and the in-memory
line with a stalled pacer, tick by tick on a manual clock."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np

from flireo.clock import ManualClock
from flireo.engine.memory_transport import MemoryTransport
from flireo.engine.transport import TransferResult
from flireo.media.frames import FRAME_SAMPLES
from flireo.recordings.capture import CallRecorder, RecordedAudio
from flireo.telephony.media_transport import SipMediaTransport
from flireo.telephony.rtp.session import RtpSession
from tests.telephony.rtp_helpers import noise, tone

TICK = 0.02


def channels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return data[:, 0], data[:, 1]


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2")


def loud_ticks(samples: np.ndarray, threshold: int = 1000) -> list[int]:
    """Tick numbers whose 20 ms slot holds audio."""
    frames = samples[: len(samples) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    return [int(i) for i in np.nonzero(np.abs(frames).max(axis=1) > threshold)[0]]


async def noop() -> None:
    return None


async def test_sip_transport_records_both_sides_through_a_cut_a_digit_and_a_bridge(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    ours = RtpSession(local_host="127.0.0.1", dtmf_pt=101, clock=clock)
    peer = RtpSession(local_host="127.0.0.1", dtmf_pt=101, clock=clock)
    ours_port, peer_port = await ours.bind(), await peer.bind()
    ours.set_remote("127.0.0.1", peer_port)
    peer.set_remote("127.0.0.1", ours_port)

    async def transfer(_destination: str) -> TransferResult:
        return TransferResult(ok=True)

    transport = SipMediaTransport(ours, on_hangup=noop, on_transfer=transfer)
    recorder = CallRecorder(format="wav", work_dir=tmp_path, chunk_frames=16)
    engine_heard: list[bytes] = []
    listening = asyncio.create_task(transport.listen(engine_heard.append))
    await asyncio.sleep(0)
    transport.attach_recorder(recorder)
    assert transport.recorder is recorder
    assert recorder.started_at == 0.0
    ours.start()
    peer.start()
    await clock.advance(0)  # the pacer's tick 0, at t = 0

    caller = tone(16_000, 0.4, hz=300)
    agent = noise(16_000, 1.0, seed=3)
    bridged = noise(16_000, 0.2, seed=4, amplitude=3000)
    digit: asyncio.Task[None] | None = None
    finishing: asyncio.Task[RecordedAudio | None] | None = None
    for k in range(101):
        # to just after tick k of the shared pacer (tick 0 runs at t = 0)
        await clock.advance(k * TICK + 0.0005 - clock.monotonic())
        if k == 10:
            await peer.send(caller)  # the caller speaks
        elif k == 30:
            await transport.send(agent)  # the agent answers: frames from tick 31 on
        elif k == 44:
            transport.clear()  # barge-in: 14 frames (ticks 31-44) went out
        elif k == 55:
            transport.detach()  # a transfer bridged by the platform takes the media
            assert recorder.held
            # the engine's side ends now and finishes the recording: that waits for the bridge
            finishing = asyncio.create_task(recorder.finish())
        elif k == 60:
            await ours.send(bridged)  # what the bridge relays to the caller: ticks 61-70
            await peer.send(caller[: 16_000 * 2 // 5])
        elif k == 80:
            digit = asyncio.create_task(ours.send_dtmf("5"))
        elif k == 100:
            assert finishing is not None
            assert not finishing.done()
            ours.close()  # the bridge ends
    assert recorder.stopped
    assert digit is not None
    await asyncio.wait_for(digit, 1)
    await clock.advance(0.1)  # ticks after the close record nothing
    await asyncio.wait_for(listening, 1)
    after_detach = [frame async for frame in ours.frames()]
    peer.close()

    assert finishing is not None
    audio = await asyncio.wait_for(finishing, 5)
    assert audio is not None
    assert await recorder.finish() is audio
    assert audio.duration_s == 101 * TICK  # ticks 0-100, one 20 ms slot each
    left, right = channels(audio.stereo_path)
    assert len(left) == 101 * FRAME_SAMPLES

    # right: exactly the 16 kHz frames that went on the wire, in their ticks
    assert loud_ticks(right) == [*range(31, 45), *range(61, 71)]
    assert np.array_equal(right[31 * FRAME_SAMPLES : 45 * FRAME_SAMPLES], pcm(agent)[: 14 * 320])
    assert np.array_equal(right[61 * FRAME_SAMPLES : 71 * FRAME_SAMPLES], pcm(bridged))
    assert not right[45 * FRAME_SAMPLES : 61 * FRAME_SAMPLES].any()  # cut: silence at once
    assert not right[71 * FRAME_SAMPLES :].any()  # the digit is not re-synthesized

    # left: exactly the frames the jitter buffer played, to the engine, then to the bridge
    assert np.array_equal(left, pcm(b"".join(engine_heard + after_detach)))
    assert len(engine_heard) == 56  # ticks 0-55 (the detach came after tick 55's frame)
    heard = loud_ticks(left)
    # the caller's 0.4 s went out from tick 11, arrived a tick later, played after the
    # 60 ms prefetch; the second burst likewise, while bridged
    assert heard[0] in range(12, 18)
    assert len([t for t in heard if t < 40]) in range(19, 22)
    assert next(t for t in heard if t > 60) in range(62, 68)


async def test_memory_line_keeps_the_timeline_when_the_pacer_skips_ticks(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    await clock.advance(3.0)
    line = MemoryTransport(clock)
    recorder = CallRecorder(format="wav", work_dir=tmp_path, chunk_frames=10)
    line.attach_recorder(recorder)
    heard: list[bytes] = []
    listening = asyncio.create_task(line.listen(heard.append))
    await clock.advance(0.005)  # the pacer's first tick, 5 ms after the recorder's zero
    speech = noise(16_000, 1.0, seed=9)
    await line.send(speech)
    line.push_caller_audio(tone(16_000, 0.5))
    for _ in range(20):
        await clock.advance(TICK)
    await clock.advance(0.2)  # the loop stalled for 200 ms: the oldest ticks are skipped
    for _ in range(20):
        await clock.advance(TICK)
    await line.hangup()
    await asyncio.wait_for(listening, 1)
    await clock.advance(0.1)
    audio = await recorder.finish()
    assert audio is not None
    left, right = channels(audio.stereo_path)

    lead = round(0.005 * 16_000)
    assert not left[:lead].any()
    assert not right[:lead].any()
    # every frame the engine heard is on the left, slot by slot, skipped ticks included
    assert np.array_equal(left[lead:], pcm(b"".join(heard)))
    assert len(heard) * TICK == audio.duration_s - lead / 16_000
    # the agent frames played are on the right at their clock time, within a tick
    slots = right[lead:].reshape(-1, FRAME_SAMPLES)
    played = iter(line.played)
    for n, slot in enumerate(slots):
        if slot.any():
            frame = next(played)
            assert np.array_equal(slot, pcm(frame.pcm))
            assert abs(recorder.offset(frame.at) - (lead / 16_000 + n * TICK)) <= 0.04
    assert next(played, None) is None
    # and the recording lasts as long as the line did
    assert line.hung_up_at is not None
    assert abs(audio.duration_s - recorder.offset(line.hung_up_at)) <= TICK


async def test_attaching_to_a_closed_line_records_nothing(tmp_path: Path) -> None:
    line = MemoryTransport(ManualClock())
    await line.hangup()
    recorder = CallRecorder(format="wav", work_dir=tmp_path)
    line.attach_recorder(recorder)
    assert recorder.stopped
    assert await recorder.finish() is None


async def test_the_frame_audio_iterator_is_recorded_too(tmp_path: Path) -> None:
    clock = ManualClock()
    line = MemoryTransport(clock)
    recorder = CallRecorder(format="wav", work_dir=tmp_path)
    line.attach_recorder(recorder)
    frames: list[bytes] = []

    async def read() -> None:
        async for frame in line.audio():
            frames.append(frame)

    reader = asyncio.create_task(read())
    line.push_caller_audio(tone(16_000, 0.1))
    await line.send(noise(16_000, 0.1))
    for _ in range(10):
        await clock.advance(TICK)
    await line.hangup()
    for _ in range(5):
        await clock.advance(TICK)
    await asyncio.wait_for(reader, 1)
    audio = await recorder.finish()
    assert audio is not None
    left, right = channels(audio.stereo_path)
    # sample 0 is the attach; the iterator's first frame came two ticks later
    lead = round(recorder.offset(line.played[0].at) * 16_000)
    assert lead == 2 * FRAME_SAMPLES
    assert not left[:lead].any()
    assert np.array_equal(left[lead:], pcm(b"".join(frames)))
    agent = pcm(line.agent_audio())
    assert np.array_equal(right[lead : lead + len(agent)], agent)
    assert not right[lead + len(agent) :].any()
