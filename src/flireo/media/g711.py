"""G.711 μ-law and A-law codecs for 16-bit mono PCM (s16le).

Lookup tables are built with the exact integer arithmetic of CPython's
``audioop`` (``st_14linear2ulaw`` / ``st_linear2alaw`` and their inverse
tables), so the output is byte-for-byte what ``audioop.lin2ulaw`` etc. give.
The textbook μ-law encoder (bias added to the 16-bit value before the
shift) differs from audioop on 381 of the 65,536 inputs; peers and test tools
that were built with audioop expect these exact bytes.

Encoding is one table lookup per sample indexed by the sample's unsigned
16-bit pattern, decoding one lookup per byte.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

# Segment end points (audioop.c: seg_uend for 14-bit μ-law, seg_aend for 13-bit A-law).
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def _all_samples() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its unsigned 16-bit pattern (0, 1, ..., -1)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _segment(
    magnitude: npt.NDArray[np.int32], seg_end: npt.NDArray[np.int32]
) -> npt.NDArray[np.int32]:
    # audioop's search(): first i with magnitude <= seg_end[i], else 8.
    return np.searchsorted(seg_end, magnitude, side="left").astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_samples() >> 2  # 14-bit, arithmetic shift as in audioop
    negative = pcm < 0
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(magnitude, _SEG_UEND)
    in_range = seg < 8
    seg_c = np.minimum(seg, 7)
    uval = (seg_c << 4) | ((magnitude >> (seg_c + 1)) & 0xF)
    code = np.where(in_range, uval ^ mask, 0x7F ^ mask)
    return code.astype(np.uint8)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_samples() >> 3  # 13-bit
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -pcm - 1, pcm)
    seg = _segment(magnitude, _SEG_AEND)
    in_range = seg < 8
    seg_c = np.minimum(seg, 7)
    shift = np.where(seg_c < 2, 1, seg_c)
    aval = (seg_c << 4) | ((magnitude >> shift) & 0xF)
    code = np.where(in_range, aval ^ mask, 0x7F ^ mask)
    return code.astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype("<i2")


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype("<i2")


_ULAW_ENC = _build_ulaw_encode()
_ALAW_ENC = _build_alaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_DEC = _build_alaw_decode()


def ulaw_encode(pcm16: bytes) -> bytes:
    """s16le mono PCM → G.711 μ-law, one byte per sample."""
    data: bytes = _ULAW_ENC[np.frombuffer(pcm16, dtype="<u2")].tobytes()
    return data


def ulaw_decode(data: bytes) -> bytes:
    """G.711 μ-law → s16le mono PCM."""
    pcm: bytes = _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()
    return pcm


def alaw_encode(pcm16: bytes) -> bytes:
    """s16le mono PCM → G.711 A-law, one byte per sample."""
    data: bytes = _ALAW_ENC[np.frombuffer(pcm16, dtype="<u2")].tobytes()
    return data


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law → s16le mono PCM."""
    pcm: bytes = _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()
    return pcm
