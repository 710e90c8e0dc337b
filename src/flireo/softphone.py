"""A softphone for trying an agent without a phone (``flireo call``).

It places a real call to a Flireo server: our own SIP user agent dials
``sip:<number>@<server>``, RTP carries G.711 both ways. The caller's lines
(text spoken by the local Piper voice, or WAV files) are played one after the
other; what the agent says is cut into utterances by the VAD and transcribed
by local Whisper in the CPU pool, and the conversation is printed as it
happens ("Agent: ..." / "You: ...").

Turn-taking: before each line the softphone waits until the agent has spoken
and then been quiet for ``quiet_s`` (it said its piece), or at most
``max_wait_s``. After the last line it waits for the agent's answer the same
way and hangs up, unless ``hangup_after_s`` is set: then the call ends that
many seconds after it was answered. A BYE from the agent ends it at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import wave
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
import numpy as np
from rich.console import Console
from rich.markup import escape

from flireo.errors import ProviderError
from flireo.media.frames import FRAME_MS, SAMPLE_RATE
from flireo.media.resample import resample_all
from flireo.media.vad import SpeechEnded, SpeechStarted, VoiceActivityDetector
from flireo.providers.stt.base import Transcript
from flireo.providers.tts.base import AudioChunk
from flireo.telephony.rtp.codec import CLOCK_RATE, CODECS, SAMPLES_PER_PACKET
from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.rtp.session import RtpSession
from flireo.telephony.sip import sdp
from flireo.telephony.sip.ua import DialFailed, Dialog, SipEndpoint

__all__ = [
    "AgentTurns",
    "CallControl",
    "CallDriver",
    "CallResult",
    "Say",
    "Softphone",
    "SoftphoneError",
    "TranscriptLine",
    "Wav",
    "lookup_agent_number",
    "read_wav",
]

USER_AGENT = "Flireo-softphone"
DTMF_PT = 101
_OFFER = (sdp.PCMU, sdp.PCMA)
_NUMBER = re.compile(r"\+?[0-9]{2,15}")
#: audio kept before the VAD's speech onset, so an utterance starts at its padded onset
_PREROLL_MS = 1000
#: what a failed INVITE means to someone testing an agent
_FAILURES = {
    403: "the server refused the call (is your address allowed on this number's trunk?)",
    404: "no such number on the server: register it with POST /api/v1/numbers",
    480: "the number is not active or has no agent",
    486: "busy",
    488: "no common codec",
    503: "the server could not start the call (see its log)",
    600: "busy",
    603: "declined",
}


class SoftphoneError(Exception):
    """The call could not be set up (bad target, agent lookup failed, unreadable WAV)."""


@dataclass(frozen=True, slots=True)
class Say:
    """A caller line spoken by the local Piper voice."""

    text: str


@dataclass(frozen=True, slots=True)
class Wav:
    """A caller line played from a mono PCM WAV file (any sample rate)."""

    path: Path


Line = Say | Wav


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    speaker: Literal["agent", "you"]
    text: str
    at_s: float  # seconds since the call was answered


@dataclass
class CallResult:
    target: str
    uri: str
    answered: bool
    #: the INVITE's final status (200 when answered; None when nothing answered)
    status: int | None = None
    #: why the call failed, or how it ended
    reason: str = ""
    transcript: list[TranscriptLine] = field(default_factory=list)
    hung_up_by: Literal["you", "agent"] | None = None
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 0 if self.answered else 1

    def said(self, speaker: Literal["agent", "you"]) -> list[str]:
        return [line.text for line in self.transcript if line.speaker == speaker]


class Synthesizer(Protocol):
    def synthesize(self, text: str) -> AsyncIterator[AudioChunk]: ...


class Transcriber(Protocol):
    async def transcribe(self, pcm16k: bytes) -> Transcript: ...


# ---- pure parts ---------------------------------------------------------------------


def parse_server(server: str, default_port: int = 5060) -> tuple[str, int]:
    """``host:port``, ``host`` or ``[v6]:port`` → (host, port)."""
    text = server.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise SoftphoneError(f"bad server address {server!r}: expected host:port")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65_536:
        raise SoftphoneError(f"bad port in server address {server!r}")
    return host, int(port_text)


def is_number(target: str) -> bool:
    """An E.164-like phone number (as opposed to an agent id)."""
    return _NUMBER.fullmatch(target.replace(" ", "")) is not None


def sip_uri(number: str, host: str, port: int) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    return f"sip:{number.replace(' ', '')}@{bracketed}:{port}"


@dataclass
class AgentTurns:
    """When the agent speaks, in milliseconds of its audio stream."""

    position_ms: int = 0
    speaking: bool = False
    last_end_ms: int | None = None  # where its latest utterance ended

    def started(self) -> None:
        self.speaking = True

    def ended(self, at_ms: int) -> None:
        self.speaking = False
        self.last_end_ms = at_ms

    def answered_since(self, mark_ms: int, quiet_ms: int) -> bool:
        """The agent spoke after ``mark_ms`` and has been quiet ``quiet_ms`` since."""
        end = self.last_end_ms
        return (
            not self.speaking
            and end is not None
            and end > mark_ms
            and self.position_ms - end >= quiet_ms
        )


def read_wav(path: Path) -> bytes:
    """A mono (or downmixed) integer PCM WAV file as 16 kHz s16le (blocking I/O)."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise SoftphoneError(f"cannot read {path}: {exc} (expected a PCM WAV file)") from exc
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        samples = ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 16).astype(np.int32)
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.int32) >> 16
    else:
        raise SoftphoneError(f"{path}: unsupported sample width {width} bytes")
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels]
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int32)
    pcm = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
    return resample_all(pcm, rate, SAMPLE_RATE)


def write_stereo_wav(path: Path, left16k: bytes, right16k: bytes) -> None:
    """Two 16 kHz s16le tracks as one stereo WAV (the shorter one padded; blocking I/O)."""
    a = np.frombuffer(left16k, "<i2")
    b = np.frombuffer(right16k, "<i2")
    n = max(a.size, b.size)
    both = np.zeros((n, 2), dtype="<i2")
    both[: a.size, 0] = a
    both[: b.size, 1] = b
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(both.tobytes())


async def lookup_agent_number(api: httpx.AsyncClient, agent_id: str) -> str:
    """The first phone number bound to ``agent_id``, through the REST API.

    ``api`` has the API root (``.../api/v1``) as base URL and the API key set.
    """
    try:
        r = await api.get(f"/agents/{quote(agent_id, safe='')}")
        if r.status_code == 404:
            raise SoftphoneError(f"no agent {agent_id} in this organization")
        if r.status_code == 401:
            raise SoftphoneError("the API refused the key (set FLIREO_API_KEY or --api-key)")
        r.raise_for_status()
        r = await api.get("/numbers")
        r.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise SoftphoneError(f"the API answered {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise SoftphoneError(f"cannot reach the API at {api.base_url}: {exc}") from exc
    numbers = [n for n in r.json().get("numbers", []) if n.get("agent_id") == agent_id]
    if not numbers:
        raise SoftphoneError(
            f"agent {agent_id} has no phone number: register one with POST /api/v1/numbers"
        )
    return str(numbers[0]["phone_number"])


async def _route(host: str, port: int) -> tuple[str, str]:
    """(our address towards the server, the server's address): an IPv4 one when the
    name has both, since ``flireo serve`` listens on 0.0.0.0 by default."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise SoftphoneError(f"cannot resolve {host}: {exc}") from exc
    family, _, _, _, addr = min(infos, key=lambda info: info[0] != socket.AF_INET)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(addr)  # sends nothing: the kernel picks the source address
        return str(probe.getsockname()[0]), str(addr[0])


def describe_failure(exc: DialFailed) -> str:
    if exc.status is None:
        return exc.reason
    meaning = _FAILURES.get(exc.status) or {
        "busy": "busy",
        "no-answer": "no answer",
        "declined": "declined",
        "auth-failed": "authentication failed",
        "cancelled": "no answer",
    }.get(exc.kind, "")
    head = f"{exc.status} {exc.reason}"
    return f"{head}: {meaning}" if meaning else head


# ---- listening to the agent ---------------------------------------------------------


class AgentEar:
    """Cuts the agent's audio into utterances with the VAD and transcribes them in order."""

    def __init__(
        self,
        stt: Transcriber,
        on_text: AgentTextCallback,
        *,
        min_silence_ms: int = 500,
        record: bool = False,
    ) -> None:
        self.turns = AgentTurns()
        self.vad = VoiceActivityDetector(min_silence_ms=min_silence_ms)
        self.recording: bytearray | None = bytearray() if record else None
        self._stt = stt
        self._on_text = on_text
        self._frames: list[tuple[int, bytes]] = []  # (start ms, frame): preroll or utterance
        self._queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    async def listen(self, frames: AsyncIterator[bytes]) -> None:
        """Until the RTP session closes; then the utterance in progress is transcribed too."""
        try:
            async for frame in frames:
                self.feed(frame)
        finally:
            if self.turns.speaking and self._frames:
                self._utterance(self._frames)
            self._frames = []
            self._queue.put_nowait(None)

    def feed(self, frame: bytes) -> None:
        """One 20 ms frame (Silero is cheap enough for the loop, as in the engine)."""
        if self.recording is not None:
            self.recording += frame
        start = self.vad.position_ms
        self._frames.append((start, frame))
        event = self.vad.process(frame)
        self.turns.position_ms = self.vad.position_ms
        if isinstance(event, SpeechStarted):
            self.turns.started()
            self._frames = [f for f in self._frames if f[0] + FRAME_MS > event.at_ms]
        elif isinstance(event, SpeechEnded):
            self.turns.ended(event.at_ms)
            spoken = [f for f in self._frames if f[0] < event.at_ms]
            self._frames = self._frames[len(spoken) :]
            self._utterance(spoken)
        elif not self.turns.speaking and len(self._frames) > _PREROLL_MS // FRAME_MS:
            del self._frames[0]

    def _utterance(self, frames: list[tuple[int, bytes]]) -> None:
        if frames:
            self._queue.put_nowait((frames[0][0], b"".join(f for _, f in frames)))

    async def transcribe_all(self) -> None:
        """Transcribe utterances in order until :meth:`listen` ends."""
        while True:
            item = await self._queue.get()
            try:
                if item is None:
                    return
                start_ms, pcm = item
                try:
                    text = (await self._stt.transcribe(pcm)).text.strip()
                except ProviderError as exc:
                    text = f"[not understood: {exc}]"
                if text:
                    self._on_text(text, start_ms / 1000)
            finally:
                self._queue.task_done()

    async def caught_up(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until every finished utterance is transcribed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)


class AgentTextCallback(Protocol):
    def __call__(self, text: str, at_s: float) -> None: ...


# ---- the softphone --------------------------------------------------------------------


class Softphone:
    """Calls a number (or an agent's first number) on a Flireo server and talks to it.

    ``api``, needed only to call an agent by id, is an HTTP client whose base
    URL is the API root (``http://host:8000/api/v1``) with the API key set.
    ``tts`` and ``stt`` default to the local Piper voice (without random
    variation, so a line sounds the same on every call) and local Whisper.
    """

    def __init__(
        self,
        *,
        server: tuple[str, int] = ("127.0.0.1", 5060),
        from_number: str | None = None,
        console: Console | None = None,
        api: httpx.AsyncClient | None = None,
        tts: Synthesizer | None = None,
        stt: Transcriber | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        quiet_s: float = 1.0,
        max_wait_s: float = 15.0,
        hangup_after_s: float | None = None,
        record: Path | None = None,
    ) -> None:
        self.server = server
        self.from_number = from_number
        self.console = console or Console()
        self.api = api
        self._tts = tts
        self._stt = stt
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.quiet_ms = round(quiet_s * 1000)
        self.max_wait_s = max_wait_s
        self.hangup_after_s = hangup_after_s
        self.record = record

    # ---- set-up ----------------------------------------------------------------------
    async def resolve(self, target: str) -> str:
        """The number to dial: ``target`` itself, or the agent ``target``'s first number."""
        target = target.strip()
        if is_number(target):
            return target.replace(" ", "")
        if self.api is None:
            raise SoftphoneError(
                f"{target!r} is not a phone number; to call an agent by id, "
                "give an API key (FLIREO_API_KEY or --api-key) and --api-url"
            )
        return await lookup_agent_number(self.api, target)

    async def prepare(self, line: Line) -> tuple[str, bytes]:
        """(what to print, 16 kHz audio) for a caller line."""
        if isinstance(line, Wav):
            return f"[{line.path.name}]", await asyncio.to_thread(read_wav, line.path)
        if self._tts is None:
            from flireo.providers.tts.local_piper import PiperTTS

            # no random variation: a line sounds the same on every call
            self._tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
        parts = [
            resample_all(chunk.pcm, chunk.sample_rate, SAMPLE_RATE)
            async for chunk in self._tts.synthesize(line.text)
        ]
        return line.text, b"".join(parts)

    def _transcriber(self) -> Transcriber:
        if self._stt is None:
            from flireo.providers.stt.local_whisper import WhisperSTT

            self._stt = WhisperSTT()
        return self._stt

    # ---- one call --------------------------------------------------------------------
    async def call(
        self, target: str, lines: Sequence[Line] = (), *, driver: CallDriver | None = None
    ) -> CallResult:
        """Dial, play ``lines`` as the caller, print the conversation, hang up.

        With a ``driver`` the caller's side is the driver's instead of ``lines``:
        it gets a :class:`CallControl` once the call is answered, and the call is
        hung up when it returns (``flireo test`` scripts its scenarios this way).

        Raises :class:`SoftphoneError` when the call cannot even be placed; a
        call that is not answered comes back with ``answered=False``.
        """
        number = await self.resolve(target)
        host, port = self.server
        uri = sip_uri(number, host, port)
        script = [await self.prepare(line) for line in lines]  # no dead air once answered
        local_ip, server_ip = await _route(host, port)
        result = CallResult(target=target, uri=uri, answered=False)
        ear = AgentEar(
            self._transcriber(),
            lambda text, at_s: self._show(result, "agent", text, at_s),
            record=self.record is not None,
        )
        caller = _CallerTrack()
        endpoint = SipEndpoint(host=local_ip, port=0, tcp=False, user_agent=USER_AGENT)
        rtp = RtpSession(
            codec_pt=sdp.PCMU,
            dtmf_pt=DTMF_PT,
            local_host=local_ip,
            on_sent=caller.sent if self.record is not None else None,
        )
        self.console.print(f"Calling {escape(number)} at {escape(uri)} …", style="dim")
        async with endpoint:
            try:
                offer = sdp.build(
                    host=local_ip,
                    port=await rtp.bind(),
                    session_id=secrets.randbits(31),
                    version=1,
                    codecs=_OFFER,
                    dtmf_pt=DTMF_PT,
                )
                try:
                    dialog, negotiated = await self._dial(endpoint, uri, offer, server_ip)
                except _NotAnswered as exc:
                    result.status, result.reason = exc.status, exc.reason
                    self.console.print(f"[bold red]Call failed:[/] {escape(exc.reason)}")
                    return result
                result.answered, result.status = True, 200
                rtp.use_codec(negotiated.codec_pt, negotiated.dtmf_pt)
                rtp.set_remote(negotiated.remote_host, negotiated.remote_port)
                rtp.start()
                self.console.print(f"Connected ({negotiated.codec}).", style="dim")
                await self._converse(dialog, rtp, ear, script, result, driver)
            finally:
                rtp.close()
        if self.record is not None and result.answered:
            you = resample_all(bytes(caller.pcm8k), CLOCK_RATE, SAMPLE_RATE)
            agent = bytes(ear.recording or b"")
            await asyncio.to_thread(write_stereo_wav, self.record, you, agent)
            self.console.print(
                f"Recorded to {escape(str(self.record))} (you left, agent right).", style="dim"
            )
        return result

    async def _dial(
        self, endpoint: SipEndpoint, uri: str, offer: bytes, server_ip: str
    ) -> tuple[Dialog, sdp.Negotiated]:
        heard = asyncio.Event()  # any response at all: the server is there

        def progress(status: int, reason: str) -> None:
            heard.set()
            if status in (180, 183):
                self.console.print("Ringing …", style="dim")

        user = (self.from_number or "softphone").replace(" ", "")
        invite = asyncio.create_task(
            endpoint.invite(
                uri,
                from_uri=f"sip:{user}@{endpoint.host}",
                sdp_offer=offer,
                timeout_s=self.timeout_s,
                on_progress=progress,
                proxy=(server_ip, self.server[1]),
            )
        )
        first = asyncio.create_task(heard.wait())
        try:
            await asyncio.wait(
                {invite, first}, timeout=self.connect_timeout_s, return_when=FIRST_COMPLETED
            )
            if not invite.done() and not heard.is_set():
                host, port = self.server
                raise _NotAnswered(
                    None,
                    f"no response from {host}:{port} within {self.connect_timeout_s:g} s "
                    "(is `flireo serve` running, and is that its FLIREO_SIP_PORT?)",
                )
            dialog = await invite
        except DialFailed as exc:
            raise _NotAnswered(exc.status, describe_failure(exc)) from exc
        finally:
            first.cancel()
            if not invite.done():
                invite.cancel()  # CANCELs the INVITE
        try:
            negotiated = sdp.accept_answer((*_OFFER, DTMF_PT), sdp.parse_audio(dialog.remote_sdp))
        except ValueError as exc:
            await dialog.bye()
            raise _NotAnswered(200, f"the answer's SDP is unusable: {exc}") from exc
        return dialog, negotiated

    async def _converse(
        self,
        dialog: Dialog,
        rtp: RtpSession,
        ear: AgentEar,
        script: list[tuple[str, bytes]],
        result: CallResult,
        driver: CallDriver | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        answered_at = loop.time()
        listening = asyncio.create_task(ear.listen(rtp.frames()))
        transcribing = asyncio.create_task(ear.transcribe_all())
        talking = asyncio.create_task(
            self._talk(dialog, rtp, ear, script, result)
            if driver is None
            else driver(CallControl(self, dialog, rtp, ear, result, answered_at))
        )
        bye = asyncio.create_task(dialog.ended.wait())
        # with --hangup-after the clock ends the call, else the end of the script does
        enders = {bye} if self.hangup_after_s is not None else {bye, talking}
        try:
            await asyncio.wait(enders, timeout=self.hangup_after_s, return_when=FIRST_COMPLETED)
        finally:
            talking.cancel()
            bye.cancel()
            by_agent = dialog.end_reason == "remote-bye"
            if not dialog.ended.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(dialog.bye(), 5)
            rtp.close()  # the listener transcribes what it holds, then the transcriber ends
            _, late = await asyncio.wait({listening, transcribing}, timeout=30)
            for task in late:
                task.cancel()
            result.duration_s = loop.time() - answered_at
            result.hung_up_by = "agent" if by_agent else "you"
            result.reason = f"{'the agent' if by_agent else 'you'} hung up"
        self.console.print(
            f"{'The agent' if by_agent else 'You'} hung up after {result.duration_s:.1f} s.",
            style="dim",
        )
        if talking.done() and not talking.cancelled() and talking.exception() is not None:
            raise talking.exception()  # type: ignore[misc]

    async def _talk(
        self,
        dialog: Dialog,
        rtp: RtpSession,
        ear: AgentEar,
        script: list[tuple[str, bytes]],
        result: CallResult,
    ) -> None:
        """Each line after the agent's turn; then wait for its answer to the last one."""
        for label, pcm in script:
            await self._agent_turn(dialog, ear)
            if dialog.ended.is_set():
                return
            self._show(result, "you", label, ear.turns.position_ms / 1000)
            await rtp.send(pcm)
            while rtp.queued_samples and not dialog.ended.is_set():  # until it has played
                with contextlib.suppress(TimeoutError):
                    wait = max(FRAME_MS / 1000, rtp.queued_samples / SAMPLE_RATE)
                    await asyncio.wait_for(dialog.ended.wait(), wait)
        await self._agent_turn(dialog, ear)

    async def _agent_turn(self, dialog: Dialog, ear: AgentEar) -> None:
        """Until the agent has spoken and gone quiet (or ``max_wait_s``), and the
        transcript has caught up with it."""
        loop = asyncio.get_running_loop()
        mark = ear.turns.position_ms
        deadline = loop.time() + self.max_wait_s
        while not dialog.ended.is_set() and loop.time() < deadline:
            if ear.turns.answered_since(mark, self.quiet_ms):
                break
            await asyncio.sleep(0.05)
        await ear.caught_up(10.0)

    def _show(
        self, result: CallResult, speaker: Literal["agent", "you"], text: str, at_s: float
    ) -> None:
        result.transcript.append(TranscriptLine(speaker, text, at_s))
        who = "[bold cyan]Agent:[/]" if speaker == "agent" else "[bold green]You:[/]"
        self.console.print(f"{who} {escape(text)}")


class CallControl:
    """The caller's side of an answered call, for a :data:`CallDriver`."""

    def __init__(
        self,
        phone: Softphone,
        dialog: Dialog,
        rtp: RtpSession,
        ear: AgentEar,
        result: CallResult,
        answered_at: float,
    ) -> None:
        self._phone, self._dialog, self._rtp, self._ear = phone, dialog, rtp, ear
        self.result = result
        self.answered_at = answered_at

    @property
    def ended(self) -> asyncio.Event:
        """Set once the call is over (the agent's BYE, or the media closed)."""
        return self._dialog.ended

    @property
    def turns(self) -> AgentTurns:
        return self._ear.turns

    @property
    def queued_samples(self) -> int:
        """Caller audio queued and not yet sent (16 kHz samples)."""
        return self._rtp.queued_samples

    def elapsed_s(self) -> float:
        """Seconds since the call was answered."""
        return asyncio.get_running_loop().time() - self.answered_at

    async def prepare(self, line: Line) -> tuple[str, bytes]:
        """(label, 16 kHz audio) of a caller line (Piper or a WAV file)."""
        return await self._phone.prepare(line)

    async def send_audio(self, pcm16k: bytes) -> None:
        """Queue caller audio without a transcript line (background noise)."""
        await self._rtp.send(pcm16k)

    async def speak(self, label: str, pcm16k: bytes) -> None:
        """Say a line (shown as "You: label") and return once it has been sent."""
        self._phone._show(self.result, "you", label, self._ear.turns.position_ms / 1000)
        await self._rtp.send(pcm16k)
        while self._rtp.queued_samples and not self.ended.is_set():
            with contextlib.suppress(TimeoutError):
                wait = max(FRAME_MS / 1000, self._rtp.queued_samples / SAMPLE_RATE)
                await asyncio.wait_for(self.ended.wait(), wait)

    async def send_dtmf(self, digits: str) -> None:
        """RFC 4733 digits (shown as "You: [DTMF 12#]"), returns once they are out."""
        self._phone._show(
            self.result, "you", f"[DTMF {digits}]", self._ear.turns.position_ms / 1000
        )
        await self._rtp.send_dtmf(digits)

    async def agent_turn(self) -> None:
        """Until the agent has spoken and gone quiet (or the softphone's ``max_wait_s``)."""
        await self._phone._agent_turn(self._dialog, self._ear)

    async def agent_speaking(self, timeout_s: float) -> bool:
        """Until the agent is speaking (True) or ``timeout_s`` passed or the call ended."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.ended.is_set() and asyncio.get_running_loop().time() < deadline:
            if self._ear.turns.speaking:
                return True
            await asyncio.sleep(0.02)
        return self._ear.turns.speaking

    async def wait_ended(self, timeout_s: float) -> bool:
        """Until the agent hangs up (True) or ``timeout_s`` passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), max(0.0, timeout_s))
        return self.ended.is_set()

    async def caught_up(self, timeout_s: float = 10.0) -> None:
        """Until what the agent said so far is transcribed."""
        await self._ear.caught_up(timeout_s)


class CallDriver(Protocol):
    """Plays the caller in an answered call; the call is hung up when it returns."""

    def __call__(self, control: CallControl) -> Coroutine[Any, Any, None]: ...


class _NotAnswered(Exception):
    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class _CallerTrack:
    """What we sent, decoded back to 8 kHz PCM, one packet per tick (for --record)."""

    def __init__(self) -> None:
        self.pcm8k = bytearray()

    def sent(self, packet: RtpPacket, _lateness: float) -> None:
        codec = CODECS.get(packet.payload_type)
        self.pcm8k += codec.decode(packet.payload) if codec else bytes(2 * SAMPLES_PER_PACKET)
