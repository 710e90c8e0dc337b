"""Smart Turn v3.2 from the installed pipecat-ai wheel: the file is the pinned one, the
features are Whisper's (checked against Pipecat's own vendored extractor, loaded from
the wheel by file path, and against properties of the mel scale), and the model tells
a finished question from an unfinished phrase in the turn-taking corpus's Piper voice,
clean and through the phone path."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from bench.turn_corpus import Voices, phone_path

from flireo.media import smart_turn
from flireo.media.checksum import ChecksumMismatch, file_sha256, verify_sha256
from flireo.media.smart_turn import (
    MAX_SAMPLES,
    N_FRAMES,
    N_MELS,
    SAMPLE_RATE,
    fit_to_window,
    log_mel_features,
    mel_filterbank,
    predict,
    predict_async,
    smart_turn_model_path,
)

FINISHED = "What are your opening hours?"
UNFINISHED = "I would like to book"


def _pipecat_features() -> ModuleType:
    """Pipecat's numpy feature extractor, executed from the wheel's file (pipecat not imported)."""
    path = smart_turn_model_path().parent.parent / "_whisper_features.py"
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus_voice() -> dict[str, bytes]:
    """The corpus generator's Piper voice (random variation off), 16 kHz s16le, plus 0.2 s
    of silence: what the model hears at an end-of-speech candidate."""

    async def make() -> dict[str, bytes]:
        voices = Voices()
        out = {}
        for text in (FINISHED, UNFINISHED):
            samples = await voices.say("piper-joe", text)
            pcm = np.concatenate([samples, np.zeros(SAMPLE_RATE // 5, dtype=np.float32)])
            out[text] = (np.clip(pcm, -1, 1) * 32767).astype(np.int16).tobytes()
        return out

    return asyncio.run(make())


def test_the_model_file_is_the_pinned_one() -> None:
    path = smart_turn_model_path()
    assert path.name == "smart-turn-v3.2-cpu.onnx"
    assert file_sha256(path) == smart_turn.SMART_TURN_SHA256
    session = smart_turn.smart_turn_session()
    (features,) = session.get_inputs()
    assert features.name == "input_features"
    assert features.shape[1:] == [N_MELS, N_FRAMES]


def test_a_changed_model_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "smart-turn.onnx"
    copy.write_bytes(smart_turn_model_path().read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumMismatch):
        verify_sha256(copy, smart_turn.SMART_TURN_SHA256)


def test_features_equal_pipecats_extractor() -> None:
    reference = _pipecat_features()
    rng = np.random.default_rng(7)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)
    for audio in (tone.astype(np.float32), (0.2 * rng.standard_normal(MAX_SAMPLES)).astype("f4")):
        window = fit_to_window(audio)
        ours = log_mel_features(window)
        theirs = reference.compute_whisper_log_mel_features(window, do_normalize=True)
        assert ours.shape == theirs.shape == (N_MELS, N_FRAMES)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_mel_filterbank_properties() -> None:
    filters = mel_filterbank()
    assert filters.shape == (N_MELS, 201)
    assert (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # filters climb the spectrum in order
    # Slaney scale: linear below 1 kHz, so the low filters are evenly spaced in Hz...
    hz = peaks * SAMPLE_RATE / 400
    low = hz[hz < 900]
    assert np.ptp(np.diff(low)) <= SAMPLE_RATE / 400 + 1e-9
    # ...and Slaney normalisation (height 2 / bandwidth in Hz) makes each triangle's area 1
    areas = filters.sum(axis=1) * SAMPLE_RATE / 400  # the sampled triangles, x bin width
    np.testing.assert_allclose(areas[N_MELS // 2 :], 1.0, rtol=0.1)


def test_a_tone_lights_the_mel_band_of_its_frequency() -> None:
    t = np.arange(MAX_SAMPLES) / SAMPLE_RATE
    features = log_mel_features((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    band = int(features[:, 100:700].mean(axis=1).argmax())
    centre_hz = mel_filterbank()[band].argmax() * SAMPLE_RATE / 400
    assert abs(centre_hz - 1000) <= 80
    # the log range is clamped to 8 decades below the peak, scaled by (x + 4) / 4
    assert features.max() - features.min() <= 2.0 + 1e-6


def test_the_window_keeps_the_last_8_seconds_padding_in_front() -> None:
    short = np.ones(1000, dtype=np.float32)
    window = fit_to_window(short)
    assert window.shape == (MAX_SAMPLES,)
    assert not window[:-1000].any()
    assert window[-1000:].all()
    long = np.arange(MAX_SAMPLES + 5, dtype=np.float32)
    assert fit_to_window(long)[0] == 5


@pytest.mark.parametrize("line", ["clean", "phone"])
def test_finished_question_is_complete_and_unfinished_phrase_is_not(
    corpus_voice: dict[str, bytes], line: str
) -> None:
    def heard(text: str) -> bytes:
        pcm = corpus_voice[text]
        if line == "clean":
            return pcm
        return phone_path(np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0)

    finished, unfinished = predict(heard(FINISHED)), predict(heard(UNFINISHED))
    assert finished.complete, finished
    assert finished.probability > 0.8
    assert not unfinished.complete, unfinished
    assert unfinished.probability < 0.3
    assert 0 < finished.cpu_s < 5  # measured: ~55 ms on this machine's cores


async def test_predict_async_leaves_the_event_loop_free(corpus_voice: dict[str, bytes]) -> None:
    spins = 0

    async def spin() -> None:
        nonlocal spins
        while True:
            spins += 1
            await asyncio.sleep(0)

    spinner = asyncio.create_task(spin())
    try:
        verdict = await predict_async(corpus_voice[FINISHED])
    finally:
        spinner.cancel()
    assert verdict.probability == pytest.approx(predict(corpus_voice[FINISHED]).probability)
    assert spins > 10  # the loop ran other work while the model did
