"""The G.711 payload formats an RTP session speaks (RFC 3551): 8 kHz, one byte a sample."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flireo.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

PCMU = 0
PCMA = 8
#: RFC 3389 comfort noise: carries no audio we play (silence instead)
COMFORT_NOISE = 13
CLOCK_RATE = 8_000
#: timestamp units (8 kHz samples) in one 20 ms packet
SAMPLES_PER_PACKET = 160


@dataclass(frozen=True, slots=True)
class G711:
    payload_type: int
    name: str
    encode: Callable[[bytes], bytes]  # s16le 8 kHz → payload
    decode: Callable[[bytes], bytes]  # payload → s16le 8 kHz
    #: one 20 ms packet of digital silence (sent on every tick nothing plays)
    silence: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "silence", self.encode(bytes(2 * SAMPLES_PER_PACKET)))


CODECS: dict[int, G711] = {
    PCMU: G711(PCMU, "PCMU", ulaw_encode, ulaw_decode),
    PCMA: G711(PCMA, "PCMA", alaw_encode, alaw_decode),
}


def codec_for(payload_type: int) -> G711:
    try:
        return CODECS[payload_type]
    except KeyError:
        raise ValueError(f"payload type {payload_type} is not PCMU (0) or PCMA (8)") from None
