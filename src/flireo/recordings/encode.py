"""Writers for a call recording's two files, fed chunk by chunk from the recording
worker thread (never from the event loop).

A chunk is the caller's and the agent's samples of the same stretch of the call
(16 kHz s16le, equal length). Each writer keeps two outputs open: the stereo
file (caller left, agent right) and the mono mix (the two channels summed with
saturation: the parties seldom talk over each other, so each keeps its full
level instead of being halved).

- :class:`WavWriter`: plain RIFF/WAVE s16le 16 kHz (``wave`` writes the header at
  the start and patches the sizes on close);
- :class:`OggOpusWriter`: Opus in Ogg through PyAV (libopus), encoded as the
  chunks come, so finishing a long call only flushes the encoder.
"""

from __future__ import annotations

import contextlib
import wave
from pathlib import Path
from typing import Literal, Protocol

import av
import numpy as np
import numpy.typing as npt

from flireo.media.frames import SAMPLE_RATE

RecordingFormat = Literal["wav", "ogg"]
FORMATS: tuple[RecordingFormat, ...] = ("wav", "ogg")
CONTENT_TYPES: dict[RecordingFormat, str] = {"wav": "audio/wav", "ogg": "audio/ogg"}
#: Opus bit rates: speech at 16 kHz is transparent well below these
STEREO_BIT_RATE = 32_000
MONO_BIT_RATE = 24_000
#: libopus effort: 1 of 0-10 halves the CPU of the default for speech that sounds
#: the same at these rates (about 6 ms of a core per second of stereo on the
#: benchmark machine instead of 10; see bench/recording.py)
OPUS_OPTIONS = {"compression_level": "1", "application": "voip"}

Samples = npt.NDArray[np.int16]


def interleave(left: Samples, right: Samples) -> Samples:
    """Stereo s16 samples ``L0 R0 L1 R1 ...`` from two equal-length channels."""
    stereo = np.empty(2 * len(left), dtype="<i2")
    stereo[0::2] = left
    stereo[1::2] = right
    return stereo


def mix(left: Samples, right: Samples) -> Samples:
    """The mono mix: both channels summed, saturated to 16 bits."""
    total = left.astype(np.int32) + right.astype(np.int32)
    return np.clip(total, -32768, 32767).astype("<i2")


class RecordingWriter(Protocol):
    def write(self, left: Samples, right: Samples) -> None: ...

    def close(self) -> None:
        """Finish both files (headers, encoder flush); idempotent."""
        ...

    def abort(self) -> None:
        """Close without caring for the files (they are about to be removed)."""
        ...


class WavWriter:
    def __init__(self, stereo_path: Path, mono_path: Path) -> None:
        self._stereo = _open_wav(stereo_path, 2)
        try:
            self._mono = _open_wav(mono_path, 1)
        except BaseException:
            self._stereo.close()
            raise
        self._closed = False

    def write(self, left: Samples, right: Samples) -> None:
        self._stereo.writeframesraw(interleave(left, right).tobytes())
        self._mono.writeframesraw(mix(left, right).tobytes())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stereo.close()  # patches the RIFF and data sizes
        finally:
            self._mono.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the files are being thrown away
            self.close()


def _open_wav(path: Path, channels: int) -> wave.Wave_write:
    out = wave.open(str(path), "wb")  # noqa: SIM115 - closed by the writer
    out.setnchannels(channels)
    out.setsampwidth(2)
    out.setframerate(SAMPLE_RATE)
    return out


class _OpusFile:
    def __init__(self, path: Path, layout: Literal["stereo", "mono"], bit_rate: int) -> None:
        self._container = av.open(str(path), "w", format="ogg")
        try:
            stream = self._container.add_stream(
                "libopus", rate=SAMPLE_RATE, layout=layout, options=dict(OPUS_OPTIONS)
            )
            stream.bit_rate = bit_rate
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._layout = layout
        self._pts = 0

    def write(self, samples: Samples, count: int) -> None:
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format="s16", layout=self._layout
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += count
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()


class OggOpusWriter:
    def __init__(self, stereo_path: Path, mono_path: Path) -> None:
        self._stereo = _OpusFile(stereo_path, "stereo", STEREO_BIT_RATE)
        try:
            self._mono = _OpusFile(mono_path, "mono", MONO_BIT_RATE)
        except BaseException:
            self._stereo._container.close()
            raise
        self._closed = False

    def write(self, left: Samples, right: Samples) -> None:
        count = len(left)
        if not count:
            return
        self._stereo.write(interleave(left, right), count)
        self._mono.write(mix(left, right), count)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stereo.close()
        finally:
            self._mono.close()

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        for part in (self._stereo, self._mono):
            with contextlib.suppress(Exception):  # the files are being thrown away
                part._container.close()


def open_writer(format: RecordingFormat, stereo_path: Path, mono_path: Path) -> RecordingWriter:
    if format == "wav":
        return WavWriter(stereo_path, mono_path)
    if format == "ogg":
        return OggOpusWriter(stereo_path, mono_path)
    raise ValueError(f"recording format must be one of {FORMATS}, got {format!r}")


__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "OggOpusWriter",
    "RecordingFormat",
    "RecordingWriter",
    "WavWriter",
    "interleave",
    "mix",
    "open_writer",
]
