"""CallRecorder on its own: what the files hold, the timeline's zero, the memory bound,
finishing and discarding, failures."""

from __future__ import annotations

import asyncio
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from flireo.clock import ManualClock
from flireo.media.frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from flireo.recordings.capture import (
    MAX_PENDING_CHUNKS,
    CallRecorder,
    RecordedAudio,
    RecordingError,
)


def tone(value: int, frames: int = 1) -> bytes:
    return np.full(FRAME_SAMPLES * frames, value, dtype="<i2").tobytes()


def read_wav(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        channels, rate = w.getnchannels(), w.getframerate()
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return channels, rate, data.reshape(-1, channels)


def files(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def decode(path: Path) -> tuple[int, np.ndarray]:
    """All samples of an Ogg Opus file (48 kHz float, channels × samples)."""
    with av.open(str(path)) as container:
        channels = container.streams.audio[0].codec_context.channels
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    data = np.concatenate(frames, axis=1)
    return channels, data


async def test_stereo_wav_holds_the_caller_left_and_what_was_sent_right(tmp_path: Path) -> None:
    recorder = CallRecorder(format="wav", work_dir=tmp_path / "rec", chunk_frames=7)
    sent: list[bytes | None] = []
    for i in range(60):
        # the agent speaks on ticks 10-29, a short last frame on tick 30, nothing else
        frame: bytes | None = tone(-(i + 1)) if 10 <= i < 30 else None
        if i == 30:
            frame = tone(-999)[: FRAME_BYTES // 2]
        sent.append(frame)
        recorder.on_tick(tone(i + 1), frame)
    audio = await recorder.finish()
    assert isinstance(audio, RecordedAudio)
    assert audio.format == "wav"
    assert audio.content_type == "audio/wav"
    assert audio.duration_s == pytest.approx(60 * 0.02)

    channels, rate, data = read_wav(audio.stereo_path)
    assert (channels, rate, len(data)) == (2, SAMPLE_RATE, 60 * FRAME_SAMPLES)
    left = data[:, 0].reshape(60, FRAME_SAMPLES)
    right = data[:, 1].reshape(60, FRAME_SAMPLES)
    for i in range(60):
        assert (left[i] == i + 1).all()
        if 10 <= i < 30:
            assert (right[i] == -(i + 1)).all()
        elif i == 30:  # the short frame, padded with silence: the timeline holds
            assert (right[i][: FRAME_SAMPLES // 2] == -999).all()
            assert (right[i][FRAME_SAMPLES // 2 :] == 0).all()
        else:
            assert (right[i] == 0).all()

    mono_channels, _, mono = read_wav(audio.mono_path)
    assert mono_channels == 1
    expected = np.clip(data[:, 0].astype(np.int32) + data[:, 1], -32768, 32767)
    assert (mono[:, 0] == expected).all()


async def test_the_mono_mix_saturates_instead_of_wrapping(tmp_path: Path) -> None:
    recorder = CallRecorder(format="wav", work_dir=tmp_path)
    recorder.on_tick(tone(30000), tone(30000))
    recorder.on_tick(tone(-30000), tone(-30000))
    audio = await recorder.finish()
    assert audio is not None
    _, _, mono = read_wav(audio.mono_path)
    assert (mono[:FRAME_SAMPLES] == 32767).all()
    assert (mono[FRAME_SAMPLES:] == -32768).all()


async def test_sample_zero_is_when_the_recorder_was_bound(tmp_path: Path) -> None:
    clock = ManualClock()
    await clock.advance(5.0)
    recorder = CallRecorder(format="wav", work_dir=tmp_path)
    recorder.bind(clock)
    assert recorder.started_at == 5.0
    await clock.advance(0.013)  # the first tick of the shared pacer comes 13 ms later
    recorder.on_tick(tone(100), tone(-100))
    assert recorder.offset(5.5) == pytest.approx(0.5)
    audio = await recorder.finish()
    assert audio is not None
    _, _, data = read_wav(audio.stereo_path)
    lead = round(0.013 * SAMPLE_RATE)
    assert len(data) == lead + FRAME_SAMPLES
    assert audio.duration_s == pytest.approx((lead + FRAME_SAMPLES) / SAMPLE_RATE)
    assert (data[:lead] == 0).all()
    assert (data[lead:, 0] == 100).all()
    assert (data[lead:, 1] == -100).all()


async def test_ogg_opus_decodes_as_two_channels_of_the_right_length(tmp_path: Path) -> None:
    recorder = CallRecorder(format="ogg", work_dir=tmp_path)
    t = np.arange(FRAME_SAMPLES * 150) / SAMPLE_RATE
    speech = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
    frames = [speech[i : i + FRAME_BYTES] for i in range(0, len(speech), FRAME_BYTES)]
    # caller talks for the first second, the agent for the second, then both are quiet
    for i in range(150):
        recorder.on_tick(
            frames[i] if i < 50 else bytes(FRAME_BYTES), frames[i] if 50 <= i < 100 else None
        )
    audio = await recorder.finish()
    assert audio is not None
    assert audio.format == "ogg"
    assert audio.content_type == "audio/ogg"
    assert audio.stereo_path.suffix == ".ogg"
    assert audio.duration_s == pytest.approx(3.0)

    channels, data = decode(audio.stereo_path)
    assert channels == 2
    assert data.shape[1] / 48_000 == pytest.approx(3.0, abs=0.03)

    def energy(channel: int, start: float, end: float) -> float:
        part = data[channel, int(start * 48_000) : int(end * 48_000)]
        return float(np.sqrt(np.mean(part**2)))

    assert energy(0, 0.1, 0.9) > 0.1
    assert energy(1, 0.1, 0.9) < 0.01
    assert energy(1, 1.1, 1.9) > 0.1
    assert energy(0, 1.1, 1.9) < 0.01
    assert energy(0, 2.1, 2.9) < 0.01
    assert energy(1, 2.1, 2.9) < 0.01

    mono_channels, mono = decode(audio.mono_path)
    assert mono_channels == 1
    assert mono.shape[1] / 48_000 == pytest.approx(3.0, abs=0.03)
    assert float(np.sqrt(np.mean(mono[0, 4800:43200] ** 2))) > 0.1  # the caller's second


async def test_frames_go_to_the_file_in_chunks_not_into_memory(tmp_path: Path) -> None:
    recorder = CallRecorder(format="wav", work_dir=tmp_path, chunk_frames=50)
    for _ in range(49):
        recorder.on_tick(tone(1), None)
    assert len(recorder._left) == 49
    assert recorder.duration_s == pytest.approx(49 * 0.02)
    recorder.on_tick(tone(1), None)
    assert recorder._left == []
    assert recorder._right == []
    for _ in range(10 * 50):  # 10 more seconds
        recorder.on_tick(tone(1), tone(2))
        assert len(recorder._left) < 50
    for _ in range(100):  # the worker catches up
        if not recorder._queue and not recorder._draining:
            break
        await asyncio.sleep(0.01)
    assert not recorder._queue
    # 11 s of stereo (and its mono mix) are on disk while the call goes on
    assert recorder.stereo_path.stat().st_size >= 11 * SAMPLE_RATE * 4
    audio = await recorder.finish()
    assert audio is not None
    assert audio.duration_s == pytest.approx(11.0)


async def test_a_stalled_disk_costs_audio_not_memory_and_keeps_the_timeline(
    tmp_path: Path,
) -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    pool.submit(release.wait)  # the only worker is busy: chunks pile up
    try:
        recorder = CallRecorder(format="wav", work_dir=tmp_path, chunk_frames=10, executor=pool)
        chunks = MAX_PENDING_CHUNKS + 5
        for _ in range(chunks * 10):
            recorder.on_tick(tone(7), tone(8))
        assert len(recorder._queue) == chunks
        # the chunks past the limit hold no frames, only their length
        held = sum(len(left) for _, left, _ in recorder._queue)
        assert held == MAX_PENDING_CHUNKS * 10
        assert recorder.dropped_frames == 5 * 10
        release.set()
        audio = await recorder.finish()
    finally:
        release.set()
        pool.shutdown()
    assert audio is not None
    _, _, data = read_wav(audio.stereo_path)
    assert len(data) == chunks * 10 * FRAME_SAMPLES
    kept = MAX_PENDING_CHUNKS * 10 * FRAME_SAMPLES
    assert (data[:kept, 0] == 7).all()
    assert (data[kept:] == 0).all()


async def test_finish_is_idempotent_and_none_without_ticks(tmp_path: Path) -> None:
    empty = CallRecorder(format="wav", work_dir=tmp_path)
    assert await empty.finish() is None
    assert files(tmp_path) == []

    recorder = CallRecorder(format="ogg", work_dir=tmp_path)
    recorder.on_tick(tone(5), None)
    first, second = await asyncio.gather(recorder.finish(), recorder.finish())
    assert first is second
    assert first is not None
    assert await recorder.finish() is first
    recorder.on_tick(tone(5), None)  # after the end: ignored
    assert first.duration_s == pytest.approx(0.02)
    first.cleanup()
    assert not first.stereo_path.exists()
    assert not first.mono_path.exists()


async def test_discard_removes_the_files(tmp_path: Path) -> None:
    recorder = CallRecorder(format="wav", work_dir=tmp_path, chunk_frames=5)
    for _ in range(20):
        recorder.on_tick(tone(3), tone(4))
    await recorder.discard()
    await recorder.discard()
    assert files(tmp_path) == []
    assert await recorder.finish() is None

    finished = CallRecorder(format="wav", work_dir=tmp_path)
    finished.on_tick(tone(3), None)
    audio = await finished.finish()
    assert audio is not None
    assert audio.stereo_path.exists()
    await finished.discard()
    assert files(tmp_path) == []


async def test_a_file_that_cannot_be_written_is_an_error_at_finish(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the directory should be")
    recorder = CallRecorder(format="wav", work_dir=blocked, chunk_frames=2)
    for _ in range(10):
        recorder.on_tick(tone(1), None)  # never raises on the loop
    with pytest.raises(RecordingError):
        await recorder.finish()
    with pytest.raises(RecordingError):
        await recorder.finish()


async def test_stop_ends_input_and_wakes_waiters(tmp_path: Path) -> None:
    recorder = CallRecorder(format="wav", work_dir=tmp_path)
    waiter = asyncio.create_task(recorder.wait_stopped())
    recorder.on_tick(tone(1), None)
    await asyncio.sleep(0)
    assert not waiter.done()
    recorder.stop()
    await asyncio.wait_for(waiter, 1)
    recorder.on_tick(tone(1), None)
    audio = await recorder.finish()
    assert audio is not None
    assert audio.duration_s == pytest.approx(0.02)


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        CallRecorder(format="mp3", work_dir=tmp_path)  # type: ignore[arg-type]


async def test_a_stopped_worker_pool_never_breaks_the_tick(tmp_path: Path) -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    recorder = CallRecorder(format="wav", work_dir=tmp_path, chunk_frames=2, executor=pool)
    for _ in range(10):
        recorder.on_tick(tone(1), tone(2))  # the pacer's tick must not raise
    with pytest.raises(RecordingError):
        await recorder.finish()


async def test_finish_waits_for_held_media_but_not_forever(tmp_path: Path) -> None:
    recorder = CallRecorder(format="wav", work_dir=tmp_path)
    recorder.on_tick(tone(1), None)
    recorder.hold()  # a bridge took the media
    finishing = asyncio.create_task(recorder.finish())
    await asyncio.sleep(0.05)
    assert not finishing.done()
    recorder.on_tick(tone(2), tone(3))  # the bridge goes on
    recorder.stop()  # and ends
    audio = await asyncio.wait_for(finishing, 5)
    assert audio is not None
    assert audio.duration_s == pytest.approx(0.04)

    stuck = CallRecorder(format="wav", work_dir=tmp_path, max_hold_s=0.05)
    stuck.on_tick(tone(1), None)
    stuck.hold()
    audio = await asyncio.wait_for(stuck.finish(), 5)  # gives up waiting, keeps what it has
    assert audio is not None
    assert stuck.stopped
