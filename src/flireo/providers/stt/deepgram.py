"""Deepgram live transcription over its websocket (``/v1/listen``).

What this client relies on (Deepgram docs, read 2026: "Live Audio" API
reference, "Configure Endpointing and Interim Results", "Finalize", "Close
Stream", "Audio Keep Alive", "Keyterm Prompting", "Keywords", "STT
Troubleshooting WebSocket, NET, and DATA Errors"):

* ``wss://api.deepgram.com/v1/listen?model=nova-3&encoding=linear16
  &sample_rate=16000&channels=1&interim_results=true&punctuate=true
  &smart_format=true&endpointing=<ms>&language=<bcp47>`` with the header
  ``Authorization: Token <key>``. A refused handshake is an HTTP 4xx/5xx.
* Audio goes up as binary frames (raw linear16). Control messages are JSON
  text frames: ``{"type": "KeepAlive"}`` (send every 3–5 s while no audio
  flows, else the server closes after 10 s with NET-0001; no reply),
  ``{"type": "Finalize"}`` (flush: the server finalizes buffered audio and
  usually — not always, when nothing is buffered — answers with a result
  carrying ``"from_finalize": true``), ``{"type": "CloseStream"}`` (the server
  sends the last results and a ``Metadata`` message, then closes).
* Server messages: ``{"type": "Results", "channel_index", "duration",
  "start", "is_final", "speech_final", "from_finalize", "channel":
  {"alternatives": [{"transcript", "confidence", "words"}]}, "metadata"}``;
  ``Metadata``; ``SpeechStarted`` and ``UtteranceEnd`` (only when asked for
  with ``vad_events`` / ``utterance_end_ms``); ``Error``. Interim results
  (``is_final: false``) are revised until a result with ``is_final: true``
  fixes that stretch of audio; an utterance is the concatenation of its
  ``is_final`` segments. ``speech_final`` marks an endpoint (silence).
* Keyterm prompting: repeated ``keyterm=`` parameters, nova-3 models only;
  older models take ``keywords=`` (single words), so terms are split into
  words there.
* Model names: agents say ``nova-3-general`` (the API spec's name), sent as
  ``model=nova-3``; other names (``nova-2-phonecall``, ``nova-3-medical``…)
  are passed through.

Behaviour decided here:

* Partials: every interim (and every ``is_final`` segment before the
  utterance ends) yields a partial :class:`Transcript` with the utterance's
  text so far.
* Finals: exactly one per :meth:`finalize`. ``finalize`` sends ``Finalize``;
  the next result with ``from_finalize`` ends the utterance with all its
  ``is_final`` segments joined. Because Deepgram may not answer a Finalize
  when nothing is buffered, the final is also emitted after
  ``finalize_timeout`` (or the shorter ``settled_finalize_timeout`` when no
  interim is pending, i.e. Deepgram had already fixed everything it heard).
  Endpointing (``speech_final``) alone does not end an utterance: the engine
  owns turn-taking. A late ``from_finalize`` after a timeout goes to the next
  utterance.
* KeepAlive every ``keepalive_interval`` seconds while no audio was sent.
* Reconnect policy: none inside the client. A socket that drops mid-call (or
  a Deepgram ``Error`` message) makes :meth:`transcripts` raise a
  :class:`ProviderError` (retryable unless Deepgram closed with a policy or
  auth error) and end; pushes after that are dropped. The engine decides
  whether to open a new stream.
* :meth:`aclose` sends ``CloseStream``, waits up to ``close_timeout`` for the
  server to finish, then closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from flireo.clock import Clock, SystemClock
from flireo.errors import MissingCredentials, ProviderError
from flireo.media.frames import SAMPLE_RATE
from flireo.providers.http_errors import error_for_handshake, error_for_transport
from flireo.providers.stt.base import Transcript

__all__ = [
    "DEEPGRAM_PROVIDER",
    "DeepgramSTT",
    "DeepgramStream",
    "deepgram_model",
    "listen_params",
]

DEEPGRAM_PROVIDER: Final = "deepgram"
DEFAULT_URL: Final = "wss://api.deepgram.com/v1/listen"
_MODEL_ALIASES: Final = {"nova-3-general": "nova-3"}
_FINAL_CLOSE_CODES: Final = frozenset({1008})


def deepgram_model(model: str) -> str:
    """The ``model=`` value for an agent's model name."""
    return _MODEL_ALIASES.get(model, model)


def listen_params(
    *,
    model: str,
    language: str | None,
    keyterms: Sequence[str],
    endpointing_ms: int | None,
    sample_rate: int = SAMPLE_RATE,
    interim_results: bool = True,
    punctuate: bool = True,
    smart_format: bool = True,
    extra: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The ``/v1/listen`` query, in order (keyterms repeat)."""
    wire_model = deepgram_model(model)
    params: list[tuple[str, str]] = [
        ("model", wire_model),
        ("encoding", "linear16"),
        ("sample_rate", str(sample_rate)),
        ("channels", "1"),
        ("interim_results", _flag(interim_results)),
        ("punctuate", _flag(punctuate)),
        ("smart_format", _flag(smart_format)),
        ("endpointing", str(endpointing_ms) if endpointing_ms is not None else "false"),
    ]
    if language:
        params.append(("language", language))
    terms = [t.strip() for t in keyterms if t.strip()]
    if wire_model.startswith("nova-3"):
        params.extend(("keyterm", t) for t in terms)
    else:
        words = dict.fromkeys(w for t in terms for w in t.split())
        params.extend(("keywords", w) for w in words)
    params.extend((extra or {}).items())
    return params


def _flag(value: bool) -> str:
    return "true" if value else "false"


class DeepgramStream:
    """One live recognition stream; made by :meth:`DeepgramSTT.open`."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        language: str | None,
        keepalive_interval: float,
        finalize_timeout: float,
        settled_finalize_timeout: float,
        close_timeout: float,
        clock: Clock,
    ) -> None:
        self._ws = ws
        self._language = language
        self._keepalive_interval = keepalive_interval
        self._finalize_timeout = finalize_timeout
        self._settled_finalize_timeout = settled_finalize_timeout
        self._close_timeout = close_timeout
        self._clock = clock
        self._out: asyncio.Queue[Transcript | ProviderError | None] = asyncio.Queue()
        self._segments: list[str] = []
        self._confidences: list[float] = []
        self._interim = ""
        self._pending: deque[int] = deque()  # ids of finalize() calls not yet answered
        self._next_id = 0
        self._last_send = clock.monotonic()
        self._closing = False
        self._failed = False
        self._timers: set[asyncio.Task[None]] = set()
        self._reader = asyncio.create_task(self._read(), name="deepgram-reader")
        self._keepalive = asyncio.create_task(self._keep_alive(), name="deepgram-keepalive")

    # --- SpeechToTextStream -------------------------------------------------------
    async def push(self, pcm: bytes) -> None:
        if pcm and await self._send(pcm):
            self._last_send = self._clock.monotonic()

    async def finalize(self) -> None:
        if self._closing or self._failed:
            return
        finalize_id = self._next_id
        self._next_id += 1
        self._pending.append(finalize_id)
        await self._send(json.dumps({"type": "Finalize"}))
        wait = self._finalize_timeout if self._interim else self._settled_finalize_timeout
        timer = asyncio.create_task(self._finalize_deadline(finalize_id, wait))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def transcripts(self) -> AsyncIterator[Transcript]:
        while True:
            item = await self._out.get()
            if item is None:
                self._out.put_nowait(None)  # later callers end too
                return
            if isinstance(item, ProviderError):
                self._out.put_nowait(None)
                raise item
            yield item

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._keepalive.cancel()
        for timer in list(self._timers):
            timer.cancel()
        if not self._failed:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(json.dumps({"type": "CloseStream"}))
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(self._close_timeout):
                    await asyncio.shield(self._reader)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(asyncio.CancelledError):
            await self._keepalive
        await self._ws.close()
        self._out.put_nowait(None)

    # --- internals ------------------------------------------------------------------
    async def _send(self, message: bytes | str) -> bool:
        if self._failed or self._closing:
            return False
        try:
            await self._ws.send(message)
        except ConnectionClosed:
            return False  # the reader reports the drop
        return True

    async def _keep_alive(self) -> None:
        keepalive = json.dumps({"type": "KeepAlive"})
        while True:
            idle = self._clock.monotonic() - self._last_send
            if idle >= self._keepalive_interval:
                if await self._send(keepalive):
                    self._last_send = self._clock.monotonic()
                idle = 0.0
            await self._clock.sleep(self._keepalive_interval - idle)

    async def _finalize_deadline(self, finalize_id: int, seconds: float) -> None:
        await self._clock.sleep(seconds)
        # finals go out in order: an earlier finalize still waiting ends first
        while self._pending and self._pending[0] <= finalize_id:
            self._emit_final()

    async def _read(self) -> None:
        failure: ProviderError | None = None
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    continue
                try:
                    data = json.loads(message)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    failure = self._handle(data)
                    if failure is not None:
                        break
        except ConnectionClosed as exc:
            failure = _close_error(exc)
        if failure is None and not self._closing:
            failure = _close_error(None, self._ws.close_code, self._ws.close_reason or "")
        if failure is not None and not self._closing:
            self._failed = True
            self._keepalive.cancel()
            self._out.put_nowait(failure)

    def _handle(self, data: dict[str, Any]) -> ProviderError | None:
        kind = data.get("type")
        if kind == "Results":
            self._on_results(data)
        elif kind == "Error":
            detail = data.get("description") or data.get("message") or "unknown error"
            variant = data.get("variant") or data.get("err_code")
            label = f" ({variant})" if variant else ""
            return ProviderError(DEEPGRAM_PROVIDER, f"stream error{label}: {detail}"[:300])
        return None

    def _on_results(self, data: dict[str, Any]) -> None:
        alternatives = (data.get("channel") or {}).get("alternatives") or [{}]
        best = alternatives[0] if isinstance(alternatives[0], dict) else {}
        text = str(best.get("transcript") or "").strip()
        if data.get("is_final"):
            self._interim = ""
            if text:
                self._segments.append(text)
                confidence = best.get("confidence")
                if isinstance(confidence, int | float):
                    self._confidences.append(float(confidence))
            if data.get("from_finalize") and self._pending:
                self._emit_final()
                return
        else:
            self._interim = text
        so_far = self._text_so_far()
        if so_far:
            self._out.put_nowait(Transcript(so_far, is_final=False, language=self._language))

    def _text_so_far(self) -> str:
        parts = [*self._segments, self._interim] if self._interim else self._segments
        return " ".join(p for p in parts if p)

    def _emit_final(self) -> None:
        if self._pending:
            self._pending.popleft()
        text = " ".join(self._segments)
        confidence = sum(self._confidences) / len(self._confidences) if self._confidences else None
        self._segments = []
        self._confidences = []
        self._interim = ""
        self._out.put_nowait(
            Transcript(text, is_final=True, confidence=confidence, language=self._language)
        )


def _close_error(
    exc: ConnectionClosed | None, code: int | None = None, reason: str = ""
) -> ProviderError:
    if exc is not None and exc.rcvd is not None:
        code, reason = exc.rcvd.code, exc.rcvd.reason
    detail = f"code {code}" + (f": {reason}" if reason else "") if code else "no close frame"
    return ProviderError(
        DEEPGRAM_PROVIDER,
        f"connection dropped mid-stream ({detail})"[:300],
        retryable=code not in _FINAL_CLOSE_CODES,
    )


class DeepgramSTT:
    """:class:`~flireo.providers.stt.base.SpeechToText` for Deepgram live streaming."""

    provider = DEEPGRAM_PROVIDER
    utterance_based = False

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = "nova-3-general",
        url: str = DEFAULT_URL,
        endpointing_ms: int | None = 300,
        smart_format: bool = True,
        punctuate: bool = True,
        extra_params: dict[str, str] | None = None,
        keepalive_interval: float = 4.0,
        finalize_timeout: float = 1.5,
        settled_finalize_timeout: float = 0.3,
        connect_timeout: float = 5.0,
        close_timeout: float = 2.0,
        clock: Clock | None = None,
    ) -> None:
        if not api_key:
            raise MissingCredentials(DEEPGRAM_PROVIDER)
        self._api_key = api_key
        self.model = model
        self.url = url
        self.endpointing_ms = endpointing_ms
        self.smart_format = smart_format
        self.punctuate = punctuate
        self.extra_params = dict(extra_params or {})
        self.keepalive_interval = keepalive_interval
        self.finalize_timeout = finalize_timeout
        self.settled_finalize_timeout = settled_finalize_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self._clock = clock or SystemClock()

    def endpoint(self, *, language: str | None = None, keyterms: Sequence[str] = ()) -> str:
        params = listen_params(
            model=self.model,
            language=language,
            keyterms=keyterms,
            endpointing_ms=self.endpointing_ms,
            punctuate=self.punctuate,
            smart_format=self.smart_format,
            extra=self.extra_params,
        )
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}{urlencode(params)}"

    async def open(
        self, *, language: str | None = None, keyterms: Sequence[str] = ()
    ) -> DeepgramStream:
        try:
            ws = await connect(
                self.endpoint(language=language, keyterms=keyterms),
                additional_headers={"Authorization": f"Token {self._api_key}"},
                open_timeout=self.connect_timeout,
                close_timeout=self.close_timeout,
                max_size=4 * 2**20,
            )
        except InvalidStatus as exc:
            raise error_for_handshake(DEEPGRAM_PROVIDER, exc) from exc
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise error_for_transport(DEEPGRAM_PROVIDER, exc) from exc
        return DeepgramStream(
            ws,
            language=language,
            keepalive_interval=self.keepalive_interval,
            finalize_timeout=self.finalize_timeout,
            settled_finalize_timeout=self.settled_finalize_timeout,
            close_timeout=self.close_timeout,
            clock=self._clock,
        )
