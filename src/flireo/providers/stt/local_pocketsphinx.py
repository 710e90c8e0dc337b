"""Offline streaming speech-to-text with pocketsphinx 5 and the US English
models inside its wheel.

Weaker than Whisper but it streams: it emits a partial :class:`Transcript`
whenever its hypothesis changes and a final on :meth:`finalize`. Decoding runs
in the shared CPU pool, one batch at a time per stream so the audio stays in
order; when decoding falls behind (a 20 ms frame can take more than 20 ms),
every frame that arrived meanwhile goes into the next batch.

A decoder takes ~0.4 s to load, so finished streams return theirs to a
process-wide pool for the next call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from flireo.errors import ProviderError
from flireo.media.cpu import Priority, run_cpu
from flireo.providers.stt.base import SpeechToTextStream, Transcript

__all__ = ["POCKETSPHINX_PROVIDER", "PocketsphinxSTT", "PocketsphinxStream"]

POCKETSPHINX_PROVIDER = "pocketsphinx"
_ENGLISH = {"en", "en-us"}

_idle: list[Any] = []
_idle_lock = threading.Lock()


def _take_decoder() -> Any:
    """An idle decoder from the pool, or a new one (blocking), with an utterance started."""
    with _idle_lock:
        decoder = _idle.pop() if _idle else None
    if decoder is None:
        import pocketsphinx

        decoder = pocketsphinx.Decoder(pocketsphinx.Config(loglevel="FATAL"))
    decoder.start_utt()
    return decoder


def _return_decoder(decoder: Any) -> None:
    decoder.end_utt()
    with _idle_lock:
        _idle.append(decoder)


def _decode(decoder: Any, audio: bytes) -> str:
    decoder.process_raw(audio, False, False)
    hyp = decoder.hyp()
    return str(hyp.hypstr) if hyp is not None else ""


def _final(decoder: Any) -> str:
    decoder.end_utt()
    hyp = decoder.hyp()
    decoder.start_utt()
    return str(hyp.hypstr) if hyp is not None else ""


class PocketsphinxSTT:
    """:class:`~flireo.providers.stt.base.SpeechToText` with local pocketsphinx."""

    provider = POCKETSPHINX_PROVIDER
    utterance_based = False

    async def open(
        self, *, language: str | None = None, keyterms: Sequence[str] = ()
    ) -> SpeechToTextStream:
        """Open a stream (``keyterms`` are not used by this engine)."""
        if language is not None and language.lower() not in _ENGLISH:
            raise ProviderError(
                POCKETSPHINX_PROVIDER, f"only US English models are installed, not {language!r}"
            )
        try:
            decoder = await run_cpu(_take_decoder)
        except Exception as exc:
            raise ProviderError(POCKETSPHINX_PROVIDER, f"cannot load decoder: {exc}") from exc
        return PocketsphinxStream(decoder)


class _Finalize:
    pass


class _Close:
    pass


_FINALIZE = _Finalize()
_CLOSE = _Close()
_Job = bytes | _Finalize | _Close


class PocketsphinxStream:
    """One streaming recognition: push audio, read partials and finals."""

    def __init__(self, decoder: Any) -> None:
        self._decoder = decoder
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._out: asyncio.Queue[Transcript | ProviderError | None] = asyncio.Queue()
        self._error: ProviderError | None = None
        self._closed = False
        self._finals_pending = 0  # finalize() calls the worker has not reached yet
        #: Decode batches run so far (more frames per batch means it fell behind).
        self.batches = 0
        self._worker = asyncio.create_task(self._run(), name="pocketsphinx-stream")

    async def push(self, pcm: bytes) -> None:
        self._check_open()
        if pcm:
            self._jobs.put_nowait(pcm)

    async def finalize(self) -> None:
        self._check_open()
        self._finals_pending += 1
        self._jobs.put_nowait(_FINALIZE)

    async def transcripts(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            if isinstance(item, ProviderError):
                raise item
            yield item

    async def aclose(self) -> None:
        """Emit the finals already asked for, then end :meth:`transcripts`.

        Audio pushed after the last :meth:`finalize` is dropped undecoded.
        """
        if self._closed:
            return
        self._closed = True
        self._jobs.put_nowait(_CLOSE)
        await self._worker

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ProviderError(POCKETSPHINX_PROVIDER, "stream is closed")

    def _batch(self, first: bytes) -> tuple[bytes, _Finalize | _Close | None]:
        """``first`` plus every queued frame behind it, and the control item that ends the run."""
        parts = [first]
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            if not isinstance(job, bytes):
                return b"".join(parts), job
            parts.append(job)
        return b"".join(parts), None

    async def _run(self) -> None:
        decoder = self._decoder
        hypothesis = ""
        pending: _Finalize | _Close | None = None
        try:
            while True:
                job: _Job = pending if pending is not None else await self._jobs.get()
                pending = None
                if isinstance(job, _Close):
                    break
                if isinstance(job, _Finalize):
                    text = await run_cpu(_final, decoder, priority=Priority.URGENT)
                    self._finals_pending -= 1
                    hypothesis = ""
                    self._out.put_nowait(Transcript(text=text, is_final=True, language="en"))
                    continue
                if self._closed and not self._finals_pending:
                    continue  # closing: audio no final was asked for is not decoded
                audio, pending = self._batch(job)
                # audio before an asked-for final is on a waiting caller's path
                urgent = self._finals_pending > 0 or isinstance(pending, _Finalize)
                priority = Priority.URGENT if urgent else Priority.NORMAL
                text = await run_cpu(_decode, decoder, audio, priority=priority)
                self.batches += 1
                if text and text != hypothesis:
                    hypothesis = text
                    self._out.put_nowait(Transcript(text=text, is_final=False, language="en"))
        except asyncio.CancelledError:
            decoder = None  # a decode may still be running on it in the pool: drop it
            raise
        except Exception as exc:
            self._error = ProviderError(POCKETSPHINX_PROVIDER, f"decoding failed: {exc}")
            self._out.put_nowait(self._error)
            decoder = None
        finally:
            if decoder is not None:
                await asyncio.shield(run_cpu(_return_decoder, decoder))
            self._out.put_nowait(None)
