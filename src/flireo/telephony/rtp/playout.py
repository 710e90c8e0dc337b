"""The receive chain of one call, one 20 ms tick at a time:
jitter buffer → G.711 decode → 8 → 16 kHz → 20 ms engine frames.

Every tick owes 160 samples (8 kHz) of caller audio. They come from the
packets whose turn it is; a lost packet, an RFC 4733 event or comfort-noise
packet, or an empty buffer becomes silence of the same length, so the engine
receives exactly one frame per 20 ms of call time (whatever the packet size)
and its VAD timing stays true whatever the network does.
"""

from __future__ import annotations

from flireo.media.frames import FRAME_BYTES, SAMPLE_RATE
from flireo.media.resample import Resampler
from flireo.telephony.rtp.codec import CLOCK_RATE, CODECS, SAMPLES_PER_PACKET
from flireo.telephony.rtp.jitter import JitterBuffer, Lost, Slot

_RATIO = SAMPLE_RATE // CLOCK_RATE  # 16 kHz samples per 8 kHz sample
_DECODERS = {pt: codec.decode for pt, codec in CODECS.items()}


class Playout:
    __slots__ = (
        "_last_samples",
        "_lead",
        "_out",
        "_owed",
        "_resampler",
        "_resampling",
        "buffer",
    )

    def __init__(self, buffer: JitterBuffer) -> None:
        self.buffer = buffer
        self._resampler = Resampler(CLOCK_RATE, SAMPLE_RATE)
        self._resampling = False  # the resampler holds audio of the current talk spurt
        self._lead = 0  # bytes of silence put in front of the spurt for the filter delay
        self._owed = 0  # 8 kHz samples this tick still needs (negative: a long packet ran over)
        self._last_samples = SAMPLES_PER_PACKET  # length of the last audio packet
        self._out = bytearray()  # 16 kHz output not yet cut into frames

    def tick(self) -> bytes:
        """Play one 20 ms tick: exactly one 20 ms engine frame."""
        self._owed += SAMPLES_PER_PACKET
        pcm8: list[bytes] = []
        silence = 0  # 8 kHz samples of silence to play after pcm8
        buffer = self.buffer
        while self._owed > 0:
            slot = buffer.pop()
            if slot is None:  # prefetching, or ran dry: silence for the rest of the tick
                silence += self._owed
                self._owed = 0
                break
            if isinstance(slot, Lost):
                samples = self._last_samples
                silence += samples
            else:
                decoded = self._decode(slot)
                if decoded is None:
                    samples = self._last_samples
                    silence += samples
                else:
                    if silence:
                        self._play(pcm8, silence)
                        pcm8 = []
                        silence = 0
                    samples = len(slot.payload)
                    self._last_samples = samples or SAMPLES_PER_PACKET
                    pcm8.append(decoded)
            self._owed -= samples
        self._play(pcm8, silence)
        return self._frame()

    def _decode(self, slot: Slot) -> bytes | None:
        decode = _DECODERS.get(slot.payload_type)
        if decode is None or not slot.payload:
            return None  # telephone-event, comfort noise...: nothing to hear
        return decode(slot.payload)

    def _play(self, pcm8: list[bytes], silence: int) -> None:
        """Append decoded audio, then ``silence`` samples, to the 16 kHz output.

        The resampler holds back a few samples (its filter delay). So that a
        talk spurt still yields exactly one frame per tick, its start is padded
        with that many samples of silence and, when the spurt ends, as many are
        cut from the held-back tail: the output stays exactly twice the input.
        """
        if pcm8:
            data = b"".join(pcm8)
            out = self._resampler.process(data)
            if not self._resampling:
                self._lead = max(0, _RATIO * len(data) - len(out))
                self._out += bytes(self._lead)
                self._resampling = True
            self._out += out
        if silence:
            if self._resampling:  # end of the talk spurt
                tail = self._resampler.flush()
                self._out += tail[: max(0, len(tail) - self._lead)]
                self._resampling = False
            self._out += bytes(2 * _RATIO * silence)

    def _frame(self) -> bytes:
        """The tick's one frame. Each tick adds at least a frame's worth on average
        (a 30 ms packet adds 1.5 frames one tick and none the next), so what is
        left over stays below a packet's length; a shortfall (never seen: the 2:1
        conversion is exact) would be padded with silence."""
        out = self._out
        if len(out) < FRAME_BYTES:
            out += bytes(FRAME_BYTES - len(out))
        frame = bytes(out[:FRAME_BYTES])
        del out[:FRAME_BYTES]
        return frame
