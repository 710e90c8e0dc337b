"""The labelled caller-audio corpus of ``bench/turn_taking.py``, made offline.

Nothing is downloaded: the caller's voice is the project's local Piper voice
(``joe-us``, at three speeds, random variation off) and, when the ``espeak-ng``
binary is installed, two espeak-ng voices (items in those voices are skipped
cleanly without it). Coughs and clicks are synthesised noise bursts. Every clip
is mixed with generated noise (pink, brown, or babble made of several Piper
sentences) at an SNR measured against the speech's own level, then sent
through the phone path: 16 kHz → 8 kHz (soxr), 300-3400 Hz band limit,
G.711 μ-law encode/decode (``flireo.media.g711``), → 16 kHz.

Each item is a 16 kHz s16le WAV and a JSON label (``Item``): its kind, the
times (seconds from the clip's start) where speech starts and ends, the pauses
inside a turn, where the caller's turn really ends, the words said and the
expected outcome. The corpus is cached under ``bench/.cache/turn_corpus/`` (keyed
by a hash of this generator's parameters) and rebuilt when they change.

``python bench/turn_corpus.py`` builds it and prints a summary.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import subprocess
import sys
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soxr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flireo.media.frames import SAMPLE_RATE  # noqa: E402
from flireo.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from flireo.media.resample import resample_all  # noqa: E402
from flireo.providers.tts.local_piper import PiperTTS  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "turn_corpus"
VERSION = 1

Kind = Literal["question", "pause", "backchannel", "cough", "click", "interruption"]
#: what the agent should do: answer once after the whole turn; keep talking; stop talking
Expected = Literal["answer-once", "keep-talking", "stop"]
EXPECTED: dict[str, Expected] = {
    "question": "answer-once",
    "pause": "answer-once",
    "backchannel": "keep-talking",
    "cough": "keep-talking",
    "click": "keep-talking",
    "interruption": "stop",
}
#: items the caller says while the agent is talking
WHILE_AGENT_TALKS = ("backchannel", "cough", "click", "interruption")

QUESTIONS = [
    "What are your opening hours?",
    "Can I book an appointment for Tuesday morning?",
    "How much does a cleaning cost?",
    "Do you have parking near the office?",
    "I would like to cancel my appointment.",
]
#: (before the pause, after it, the pause in seconds): the turn goes on after the pause
PAUSES = [
    ("I would like to book", "a table for two tomorrow evening.", 0.5),
    ("My name is", "Peter Johnson.", 0.7),
    ("Can you tell me", "when you open on Saturday?", 0.9),
    ("I need to change", "the date of my appointment.", 1.1),
    ("The problem is that", "my card does not work.", 1.3),
    ("I was wondering if", "you could call me back later.", 1.5),
]
BACKCHANNELS = ["Mm-hmm.", "Yeah.", "Okay.", "Right."]
INTERRUPTIONS = [
    "Wait.",
    "No, stop, I meant Thursday.",
    "Wait, stop. I have a question.",
    "Sorry, that is not what I asked.",
]
#: (noise, SNR dB); None = clean. Every base item is made in each condition.
CONDITIONS: list[tuple[str, float | None]] = [
    ("none", None),
    ("pink", 20.0),
    ("babble", 10.0),
    ("brown", 5.0),
]
PIPER_VOICES = {"piper-joe": 1.0, "piper-joe-fast": 0.85, "piper-joe-slow": 1.2}
ESPEAK_VOICES = {"espeak-us": ("en-us", 165), "espeak-gb-f": ("en-gb+f3", 150)}
VOICE_ORDER = ["piper-joe", "espeak-us", "piper-joe-fast", "espeak-gb-f", "piper-joe-slow"]
BABBLE_TEXTS = [
    "The weather was lovely at the beach last weekend and we stayed until late.",
    "Please remember to bring the documents to the meeting on Monday.",
    "He said the train was delayed again because of the storm.",
    "We should order some more paper for the printer in the hallway.",
]
LEAD_S = 0.3
#: noise-only audio after the last word: the engine's endpointing runs in it
TAIL_S = {"question": 3.0, "pause": 3.0}
TAIL_OTHER_S = 2.5


@dataclass(frozen=True)
class Item:
    id: str
    kind: Kind
    voice: str
    noise: str
    snr_db: float | None
    #: words the caller says (empty for coughs and clicks)
    text: str
    speech_start_s: float
    speech_end_s: float
    #: (start, end) of the silences inside one turn (mid-sentence pauses)
    pauses: list[tuple[float, float]]
    #: where the caller's turn really ends (the last word), None if it is not a turn
    turn_end_s: float | None
    expected: Expected
    duration_s: float
    wav: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def while_agent_talks(self) -> bool:
        return self.kind in WHILE_AGENT_TALKS

    def pcm(self, root: Path = CACHE) -> bytes:
        with wave.open(str(root / self.wav), "rb") as w:
            return w.readframes(w.getnframes())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Item:
        data = dict(data)
        data["pauses"] = [tuple(p) for p in data["pauses"]]
        return cls(**data)


F32 = npt.NDArray[np.float32]


# --- voices ------------------------------------------------------------------------


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def voices() -> list[str]:
    """The voices this machine can make (espeak-ng ones only when it is installed)."""
    return [v for v in VOICE_ORDER if v in PIPER_VOICES or espeak_available()]


class Voices:
    def __init__(self) -> None:
        self._piper = {
            name: PiperTTS(noise_scale=0.0, noise_w_scale=0.0, length_scale=scale)
            for name, scale in PIPER_VOICES.items()
        }
        self._cache: dict[tuple[str, str], F32] = {}

    async def say(self, voice: str, text: str) -> F32:
        """``text`` in ``voice``, 16 kHz float32 in [-1, 1], silence trimmed."""
        key = (voice, text)
        if key not in self._cache:
            if voice in self._piper:
                parts = []
                async for chunk in self._piper[voice].synthesize(text):
                    parts.append(resample_all(chunk.pcm, chunk.sample_rate, SAMPLE_RATE))
                pcm = b"".join(parts)
            else:
                pcm = await asyncio.to_thread(_espeak, voice, text)
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
            self._cache[key] = trim(samples)
        return self._cache[key]


def _espeak(voice: str, text: str) -> bytes:
    name, rate = ESPEAK_VOICES[voice]
    out = subprocess.run(
        ["espeak-ng", "--stdout", "-v", name, "-s", str(rate), text],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    with wave.open(io.BytesIO(out), "rb") as w:
        raw, rate_in = w.readframes(w.getnframes()), w.getframerate()
    return resample_all(raw, rate_in, SAMPLE_RATE)


def trim(samples: F32, threshold: float = 0.01) -> F32:
    """Drop leading/trailing audio quieter than ``threshold`` (10 ms windows)."""
    win = SAMPLE_RATE // 100
    n = samples.size // win
    if n == 0:
        return samples
    rms = np.sqrt((samples[: n * win].reshape(n, win) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] * win : (loud[-1] + 1) * win]


# --- sounds that are not words --------------------------------------------------------


def cough(rng: np.random.Generator, seconds: float = 0.3) -> F32:
    """Two bursts of decaying band-passed noise, like a cough on a phone."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    burst = rng.normal(0.0, 1.0, n) * np.exp(-t * 14.0)
    second = np.zeros(n)
    lag = int(0.12 * SAMPLE_RATE)
    second[lag:] = 0.6 * rng.normal(0.0, 1.0, n - lag) * np.exp(-t[: n - lag] * 20.0)
    sound = bandpass(burst + second, 200.0, 2500.0)
    out: F32 = (0.5 * sound / (np.abs(sound).max() + 1e-9)).astype(np.float32)
    return out


def clicks(rng: np.random.Generator, count: int = 3) -> F32:
    """A few sharp clicks (a pen, a keyboard) 80-150 ms apart."""
    out = np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)
    at = 0
    for _ in range(count):
        length = int(0.004 * SAMPLE_RATE)
        click = rng.normal(0.0, 1.0, length) * np.exp(-np.arange(length) / 12.0)
        out[at : at + length] += (0.8 * click / np.abs(click).max()).astype(np.float32)
        at += int(rng.uniform(0.08, 0.15) * SAMPLE_RATE)
    return out


# --- noise and the phone line ---------------------------------------------------------


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> F32:
    """Noise with power ∝ 1/f^exponent (1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    f[0] = f[1]
    spectrum /= f ** (exponent / 2.0)
    spectrum[f < 20.0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    out: F32 = (noise / (np.sqrt((noise**2).mean()) + 1e-12)).astype(np.float32)
    return out


async def babble(voices: Voices, rng: np.random.Generator, n: int) -> F32:
    """Several Piper sentences at once, looped and shifted: a room of talkers. Unit RMS."""
    out = np.zeros(n, dtype=np.float32)
    for i, text in enumerate(BABBLE_TEXTS):
        speech = await voices.say(list(PIPER_VOICES)[i % len(PIPER_VOICES)], text)
        looped = np.tile(speech, n // speech.size + 2)
        start = int(rng.integers(0, speech.size))
        out += looped[start : start + n]
    scaled: F32 = (out / (np.sqrt((out**2).mean()) + 1e-12)).astype(np.float32)
    return scaled


def bandpass(x: npt.NDArray[Any], low: float, high: float, rate: int = SAMPLE_RATE) -> F32:
    """Zero-phase FFT band-pass with 100 Hz cosine skirts."""
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1.0 / rate)
    gain = np.ones_like(f)
    edge = 100.0
    gain[f < low - edge] = 0.0
    lo = (f >= low - edge) & (f < low)
    gain[lo] = 0.5 - 0.5 * np.cos(np.pi * (f[lo] - (low - edge)) / edge)
    gain[f > high + edge] = 0.0
    hi = (f > high) & (f <= high + edge)
    gain[hi] = 0.5 + 0.5 * np.cos(np.pi * (f[hi] - high) / edge)
    return np.fft.irfft(spectrum * gain, x.size).astype(np.float32)


def phone_path(x: F32) -> bytes:
    """16 kHz float → 8 kHz, 300-3400 Hz, μ-law and back → 16 kHz s16le."""
    narrow = soxr.resample(x.astype(np.float32), SAMPLE_RATE, 8_000, quality="HQ")
    narrow = bandpass(narrow, 300.0, 3400.0, rate=8_000)
    pcm8 = (np.clip(narrow, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    line = np.frombuffer(ulaw_decode(ulaw_encode(pcm8)), dtype="<i2").astype(np.float32)
    wide = soxr.resample(line / 32768.0, 8_000, SAMPLE_RATE, quality="HQ")
    data: bytes = (np.clip(wide, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return data


def active_rms(x: F32) -> float:
    """RMS over the 10 ms windows that carry signal (the speech's own level)."""
    win = SAMPLE_RATE // 100
    n = x.size // win
    rms = np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1))
    active = rms[rms > 0.1 * rms.max()] if n else rms
    return float(np.sqrt((active**2).mean())) if active.size else 0.0


# --- items ------------------------------------------------------------------------------


@dataclass
class _Base:
    kind: Kind
    text: str
    segments: list[F32]
    gaps: list[float]
    name: str


async def _bases(v: Voices, voice: str, names: Sequence[str] | None) -> list[_Base]:
    """Every spoken base item in ``voice`` (only those in ``names`` get audio)."""
    specs: list[tuple[Kind, str, list[str], list[float]]] = []
    specs += [("question", f"q{i}", [q], []) for i, q in enumerate(QUESTIONS)]
    specs += [("pause", f"p{i}", [a, b], [g]) for i, (a, b, g) in enumerate(PAUSES)]
    specs += [("backchannel", f"b{i}", [w], []) for i, w in enumerate(BACKCHANNELS)]
    specs += [("interruption", f"i{i}", [t], []) for i, t in enumerate(INTERRUPTIONS)]
    bases = []
    for kind, name, texts, gaps in specs:
        wanted = names is None or name in names
        segments = [await v.say(voice, t) for t in texts] if wanted else []
        bases.append(_Base(kind, " ".join(texts), segments, gaps, name))
    return bases


def _sounds(rng: np.random.Generator) -> list[_Base]:
    return [
        _Base("cough", "", [cough(rng)], [], "c0"),
        _Base("cough", "", [cough(rng, 0.45)], [], "c1"),
        _Base("click", "", [clicks(rng)], [], "k0"),
    ]


async def _render(
    base: _Base, noise: str, snr: float | None, v: Voices, rng: np.random.Generator
) -> tuple[bytes, dict[str, Any]]:
    lead = int(LEAD_S * SAMPLE_RATE)
    tail = int(TAIL_S.get(base.kind, TAIL_OTHER_S) * SAMPLE_RATE)
    pieces: list[F32] = [np.zeros(lead, dtype=np.float32)]
    pauses: list[tuple[float, float]] = []
    at = lead
    for i, seg in enumerate(base.segments):
        pieces.append(seg)
        at += seg.size
        if i < len(base.gaps):
            gap = int(base.gaps[i] * SAMPLE_RATE)
            pauses.append((at / SAMPLE_RATE, (at + gap) / SAMPLE_RATE))
            pieces.append(np.zeros(gap, dtype=np.float32))
            at += gap
    speech_end = at
    pieces.append(np.zeros(tail, dtype=np.float32))
    clean = np.concatenate(pieces)
    # a level a phone caller has (-20 dBFS active), then noise against it
    clean *= 0.1 / (active_rms(clean) + 1e-9)
    mixed = clean
    if snr is not None:
        if noise == "babble":
            bed = await babble(v, rng, clean.size)
        else:
            bed = coloured_noise(rng, clean.size, 1.0 if noise == "pink" else 2.0)
        mixed = clean + bed * (active_rms(clean) / 10 ** (snr / 20.0))
    pcm = phone_path(mixed)
    label = {
        "speech_start_s": round(LEAD_S, 3),
        "speech_end_s": round(speech_end / SAMPLE_RATE, 3),
        "pauses": [(round(a, 3), round(b, 3)) for a, b in pauses],
        "duration_s": round(len(pcm) / 2 / SAMPLE_RATE, 3),
    }
    return pcm, label


def _key() -> str:
    parts = [
        VERSION,
        QUESTIONS,
        PAUSES,
        BACKCHANNELS,
        INTERRUPTIONS,
        CONDITIONS,
        PIPER_VOICES,
        ESPEAK_VOICES if espeak_available() else {},
        LEAD_S,
        TAIL_S,
        TAIL_OTHER_S,
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


async def build(
    root: Path = CACHE,
    *,
    conditions: Sequence[tuple[str, float | None]] | None = None,
    names: Sequence[str] | None = None,
    voice: str | None = None,
    rebuild: bool = False,
) -> list[Item]:
    """Make (or load from ``root``) the corpus. The filters make a small one for tests:
    ``names`` picks base items ("q0" the first question, "b0", "i2", "c0", ...),
    ``voice`` says them all in one voice."""
    small = (conditions, names, voice) != (None, None, None)
    key = _key() + (f"-{json.dumps([conditions, names, voice])}" if small else "")
    index = root / "index.json"
    if not rebuild:
        cached = await asyncio.to_thread(_cached, index, key)
        if cached is not None:
            return cached
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    v = Voices()
    rng = np.random.default_rng(20261207)
    conds = list(conditions) if conditions is not None else CONDITIONS
    voice_list = voices()
    items: list[Item] = []
    bases_by_voice: dict[str, list[_Base]] = {}
    sounds = _sounds(rng)
    n = 0
    for ci, (noise, snr) in enumerate(conds):
        for bi in range(len(QUESTIONS) + len(PAUSES) + len(BACKCHANNELS) + len(INTERRUPTIONS)):
            speaker = voice or voice_list[(bi + ci) % len(voice_list)]
            if speaker not in bases_by_voice:
                bases_by_voice[speaker] = await _bases(v, speaker, names)
            base = bases_by_voice[speaker][bi]
            items_for = [(base, speaker)]
            if bi < len(sounds):
                items_for.append((sounds[bi], "synthetic"))
            for b, vname in items_for:
                if names is not None and b.name not in names:
                    continue
                pcm, label = await _render(b, noise, snr, v, rng)
                item_id = f"{b.name}-{vname}-{noise}{'' if snr is None else int(snr)}"
                wav_name = f"{item_id}.wav"
                await asyncio.to_thread(_write_wav, root / wav_name, pcm)
                is_turn = b.kind in ("question", "pause")
                items.append(
                    Item(
                        id=item_id,
                        kind=b.kind,
                        voice=vname,
                        noise=noise,
                        snr_db=snr,
                        text=b.text,
                        turn_end_s=label["speech_end_s"] if is_turn else None,
                        expected=EXPECTED[b.kind],
                        wav=wav_name,
                        **label,
                    )
                )
                n += 1
    text = json.dumps({"key": key, "items": [asdict(i) for i in items]}, indent=1) + "\n"
    await asyncio.to_thread(index.write_text, text)
    return items


def _cached(index: Path, key: str) -> list[Item] | None:
    if not index.exists():
        return None
    data = json.loads(index.read_text())
    if data.get("key") != key:
        return None
    return [Item.from_json(d) for d in data["items"]]


def _write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)


def main() -> None:
    items = asyncio.run(build(rebuild="--rebuild" in sys.argv))
    kinds: dict[str, int] = {}
    for item in items:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    print(f"{len(items)} items in {CACHE}: {kinds}; voices {sorted({i.voice for i in items})}")


if __name__ == "__main__":
    main()
