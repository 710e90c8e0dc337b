"""Smart Turn v3.2 (Pipecat's end-of-turn model, CPU ONNX, BSD-2-Clause) with onnxruntime.

The model ships inside the ``pipecat-ai`` wheel. That wheel's own dependency
tree is heavy (numba/llvmlite, Pillow, aiohttp, openai, loguru, resampy, ...)
and none of it is needed to run one ONNX file, so the wheel is installed with
``--no-deps`` (``requirements-nodeps.lock``) and nothing of ``pipecat`` is ever
imported: the file is found through the distribution's installed file list
(:func:`importlib.metadata.distribution`), checked against
:data:`SMART_TURN_SHA256`, and loaded once per process.

Input: the last 8 s of the caller's turn at 16 kHz (zero-padded at the front
when shorter), Whisper log-mel features (80 mel bins x 800 frames: 25 ms Hann
window, 10 ms hop, Slaney mel scale and area normalisation, log10, clamped to
8 below the maximum, ``(x + 4) / 4``), after zero-mean unit-variance
normalisation of the waveform: what ``transformers.WhisperFeatureExtractor(
chunk_length=8)`` computes and what Pipecat's ``LocalSmartTurnAnalyzerV3``
feeds the model (its vendored ``_whisper_features.py``). Output: the
probability that the turn is complete.

Inference runs on its own one-thread pool (:func:`predict_async`): one run is
tens of milliseconds, it is on the end-of-turn path of a waiting caller, so it
must not queue behind a Whisper transcription in the shared speech pool.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime

from flireo.media.checksum import verify_sha256

__all__ = [
    "MAX_SAMPLES",
    "N_FRAMES",
    "N_MELS",
    "SMART_TURN_SHA256",
    "SmartTurnMissing",
    "TurnVerdict",
    "cpu_log",
    "log_mel_features",
    "mel_filterbank",
    "predict",
    "predict_async",
    "smart_turn_model_path",
    "smart_turn_session",
]

#: SHA-256 of ``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx`` in pipecat-ai 1.14.0.
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
DISTRIBUTION = "pipecat-ai"
MODEL_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"

SAMPLE_RATE = 16_000
MAX_SECONDS = 8
MAX_SAMPLES = SAMPLE_RATE * MAX_SECONDS  # 128 000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 80
N_FRAMES = MAX_SAMPLES // HOP  # 800
_MEL_FLOOR = 1e-10
_NORM_EPS = 1e-7

_session: onnxruntime.InferenceSession | None = None
_session_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
#: CPU seconds of every verdict so far in this process (benchmarks read it)
cpu_log: list[float] = []


class SmartTurnMissing(RuntimeError):
    """The ``pipecat-ai`` wheel holding the model is not installed."""


def smart_turn_model_path() -> Path:
    """Path of the ONNX file inside the installed ``pipecat-ai`` distribution (not imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise SmartTurnMissing(
            "the Smart Turn model ships in the pipecat-ai wheel: "
            "pip install --no-deps -r requirements-nodeps.lock"
        ) from exc
    path = Path(str(dist.locate_file(MODEL_FILE)))
    if not path.is_file():
        raise SmartTurnMissing(f"{path} is missing from the installed pipecat-ai")
    return path


def smart_turn_session() -> onnxruntime.InferenceSession:
    """The process-wide session, loaded (and checksum-checked) on first use."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                path = smart_turn_model_path()
                verify_sha256(path, SMART_TURN_SHA256)
                opts = onnxruntime.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
                opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                _session = onnxruntime.InferenceSession(
                    str(path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
    return _session


# --- features ------------------------------------------------------------------------


def _hz_to_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney mel scale: linear below 1 kHz (3 mels / 200 Hz), logarithmic above."""
    linear = 3.0 * freq / 200.0
    log = 15.0 + np.log(np.maximum(freq, 1e-12) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(freq >= 1000.0, log, linear)


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = 200.0 * mels / 3.0
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels - 15.0))
    return np.where(mels >= 15.0, log, linear)


@lru_cache(maxsize=1)
def mel_filterbank() -> npt.NDArray[np.float64]:
    """(N_MELS, N_FFT // 2 + 1) triangular filters, Slaney-normalised (area 1 per Hz)."""
    edges = np.array([0.0, SAMPLE_RATE / 2], dtype=np.float64)
    lo, hi = _hz_to_mel(edges)
    points = _mel_to_hz(np.linspace(lo, hi, N_MELS + 2))
    bins = np.linspace(0.0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    left, centre, right = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (points[2:] - points[:-2]))[:, None]
    filters.setflags(write=False)
    return filters


@lru_cache(maxsize=1)
def _window() -> npt.NDArray[np.float64]:
    """Periodic Hann window of N_FFT samples (``torch.hann_window`` default)."""
    n = np.arange(N_FFT, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)
    window.setflags(write=False)
    return window


def fit_to_window(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The last 8 s of ``audio``, zero-padded at the front when shorter (as Pipecat does)."""
    if audio.size >= MAX_SAMPLES:
        return np.ascontiguousarray(audio[-MAX_SAMPLES:], dtype=np.float32)
    out = np.zeros(MAX_SAMPLES, dtype=np.float32)
    out[MAX_SAMPLES - audio.size :] = audio
    return out


def log_mel_features(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(80, 800) Whisper log-mel features of exactly 8 s of 16 kHz float audio."""
    if audio.shape != (MAX_SAMPLES,):
        raise ValueError(f"expected {MAX_SAMPLES} samples, got shape {audio.shape}")
    x = audio.astype(np.float32)
    x = (x - x.mean()) / np.sqrt(x.var() + _NORM_EPS)  # float32, before the STFT
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]  # (801, 400)
    power = np.abs(np.fft.rfft(frames * _window(), axis=-1)) ** 2  # (801, 201)
    mel = np.maximum(_MEL_FLOOR, mel_filterbank() @ power.T)  # (80, 801)
    log = np.log10(mel)[:, :-1]  # Whisper drops the last frame
    log = np.maximum(log, log.max() - 8.0)
    out: npt.NDArray[np.float32] = ((log + 4.0) / 4.0).astype(np.float32)
    return out


# --- inference -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnVerdict:
    #: probability that the caller's turn is complete
    probability: float
    #: CPU time of this verdict (features + model), seconds of the thread that ran it
    cpu_s: float

    @property
    def complete(self) -> bool:
        return self.probability > 0.5


def predict(pcm: bytes | npt.NDArray[np.int16]) -> TurnVerdict:
    """Verdict on a turn given as 16 kHz s16le PCM (blocking; see :func:`predict_async`)."""
    started = time.thread_time()
    samples = np.frombuffer(pcm, dtype=np.int16) if isinstance(pcm, bytes) else pcm
    audio = fit_to_window(samples.astype(np.float32) / 32768.0)
    features = log_mel_features(audio)[None, :, :]
    (logits,) = smart_turn_session().run(None, {"input_features": features})
    probability = float(np.asarray(logits).reshape(-1)[0])  # the graph ends in a sigmoid
    cpu_s = time.thread_time() - started
    cpu_log.append(cpu_s)
    return TurnVerdict(probability, cpu_s)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _session_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flireo-turn")
    return _pool


async def predict_async(pcm: bytes) -> TurnVerdict:
    """:func:`predict` on the model's own one-thread pool, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), predict, pcm)
