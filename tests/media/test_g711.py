"""G.711 must be byte-for-byte what CPython's audioop produces, for every input."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from flireo.media.frames import FRAME_BYTES, FRAME_SAMPLES
from flireo.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

EVERY_SAMPLE = np.arange(65536, dtype=np.uint16).view("<i2").tobytes()
EVERY_BYTE = bytes(range(256))


def test_ulaw_encoding_matches_audioop_for_every_16_bit_sample() -> None:
    assert ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE, 2)


def test_alaw_encoding_matches_audioop_for_every_16_bit_sample() -> None:
    assert alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE, 2)


def test_ulaw_decoding_matches_audioop_for_every_byte() -> None:
    assert ulaw_decode(EVERY_BYTE) == audioop.ulaw2lin(EVERY_BYTE, 2)


def test_alaw_decoding_matches_audioop_for_every_byte() -> None:
    assert alaw_decode(EVERY_BYTE) == audioop.alaw2lin(EVERY_BYTE, 2)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_a_frame_round_trips_within_the_companding_step(
    encode: Callable[[bytes], bytes], decode: Callable[[bytes], bytes]
) -> None:
    t = np.arange(FRAME_SAMPLES) / 16_000
    pcm = (np.sin(2 * np.pi * 440 * t) * 12_000).astype("<i2")
    coded = encode(pcm.tobytes())
    assert len(coded) == FRAME_SAMPLES
    back = np.frombuffer(decode(coded), dtype="<i2")
    assert len(back) * 2 == FRAME_BYTES
    # Log companding: the error grows with the amplitude, at most ~1/32 of it (+ a small floor).
    error = np.abs(back.astype(np.int32) - pcm.astype(np.int32))
    assert np.all(error <= np.abs(pcm.astype(np.int32)) // 16 + 16)


def test_empty_input_gives_empty_output() -> None:
    assert ulaw_encode(b"") == b""
    assert alaw_decode(b"") == b""
