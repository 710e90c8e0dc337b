"""The speech-to-speech pipeline (xAI realtime and the like).

The vendor listens (server VAD), transcribes, thinks and speaks; this module
connects it to the call: caller frames go up, vendor audio is resampled to
16 kHz and queued on the transport, and the shared parts of the engine do the
rest the same way as for the cascade — transcript, tools (the same webhooks,
``endCall``, ``transferCall``, ``sendDtmf``), control commands, silence
handling, voicemail, metrics and usage.

Barge-in: when the vendor hears the caller start (``speech_started``) while
agent audio is queued or playing, the queue is dropped at once, the response
is cancelled, and the transcript keeps the share of words the caller heard.
Saying an exact text (first message, control ``say``) asks the model to say it
verbatim with one-off response instructions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from flireo.engine import ended_reasons
from flireo.engine.config import END_CALL_TOOL, SEND_DTMF_TOOL, TRANSFER_CALL_TOOL
from flireo.engine.context import CallContext
from flireo.engine.dtmf import VALID_DIGITS
from flireo.engine.ended_reasons import PipelineFailure, stage
from flireo.engine.events import CallerInterrupted
from flireo.engine.metrics import TurnTimer
from flireo.engine.speech import Segment, Utterance
from flireo.engine.tool_webhook import ToolResult, error_result
from flireo.engine.voicemail import Verdict
from flireo.errors import ProviderError
from flireo.media.frames import BYTES_PER_SAMPLE, SAMPLE_RATE
from flireo.media.resample import Resampler
from flireo.providers.llm.base import ToolCall
from flireo.providers.realtime.base import (
    RealtimeAudio,
    RealtimeError,
    RealtimeModel,
    RealtimeResponseDone,
    RealtimeSession,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeToolCall,
    RealtimeTranscript,
)

log = logging.getLogger(__name__)

#: speaking pace assumed until the call's own responses tell (English TTS: ~2.5-3.5)
DEFAULT_WORDS_PER_SECOND = 3.0
VERBATIM = 'Say exactly the following to the caller, word for word, and nothing else: "{}"'


@dataclass(eq=False)
class _Response:
    """One vendor response being played."""

    timer: TurnTimer | None
    source: str | None = None
    utterance: Utterance = field(default_factory=Utterance)
    segment: Segment | None = None
    text: str = ""
    interrupted: bool = False
    #: the turn goes on in the response that answers this one's tool call
    hands_over: bool = False
    #: its words are in the transcript already (recorded with its tool call)
    recorded: bool = False
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class RealtimeConversation:
    def __init__(self, ctx: CallContext, model: RealtimeModel) -> None:
        self._ctx = ctx
        self._model = model
        self._session: RealtimeSession | None = None
        self._outbox: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._resamplers: dict[int, Resampler] = {}
        #: the response the vendor is producing, and the previous one still playing out
        self._response: _Response | None = None
        self._draining: _Response | None = None
        #: what our own requests (say, respond) will become, in order
        self._requested: deque[_Response] = deque()
        #: the caller's turn the vendor will answer next
        self._user_turn: TurnTimer | None = None
        self._speech_stopped_at: float | None = None
        #: words and audio seconds of the responses played in full (the voice's pace)
        self._pace_words = 0
        self._pace_seconds = 0.0
        self._tg: asyncio.TaskGroup | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        config = self._ctx.config
        with stage("realtime"):
            self._session = await self._model.connect(
                instructions=config.system_prompt,
                tools=self._ctx.tools.specs,
                voice=config.voice,
                temperature=config.temperature,
            )
            for message in config.messages:
                if message.role != "system":
                    await self._session.add_message(message.role, message.content)

    async def run(self) -> None:
        # as in the cascade: no local name for the group, and its cancellation re-raised
        # without the group's traceback, so a finished call is not a reference cycle
        self._tg = asyncio.TaskGroup()
        try:
            async with self._tg:
                self._tg.create_task(self._send_audio(), name="realtime-audio-up")
                self._tg.create_task(self._send_requests(), name="realtime-requests")
                self._tg.create_task(self._receive(), name="realtime-events")
        except asyncio.CancelledError as exc:
            raise exc.with_traceback(None) from None
        finally:
            self._tg = None

    async def close(self) -> None:
        for response in self._requested:
            _settle(response)
        if self._response is not None:
            _settle(self._response)
        if self._session is not None:
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(3.0):
                    await self._session.aclose()

    @property
    def session(self) -> RealtimeSession:
        assert self._session is not None
        return self._session

    # --- what the session asks -------------------------------------------------------------
    def add_context(self, text: str, *, source: str) -> None:
        self._ctx.transcript.system(text, source=source)
        self._outbox.put_nowait(lambda: self.session.add_message("system", text))

    def respond(self, trigger: str, *, tools: bool = True) -> asyncio.Future[None]:
        response = _Response(self._ctx.new_turn(trigger))
        return self._request(response, None)

    def user_input(self, text: str, *, trigger: str) -> None:
        if self._ctx.closing:
            return
        self._barge_in()
        self._ctx.transcript.user(text)
        self._outbox.put_nowait(lambda: self.session.add_message("user", text))
        if not self._ctx.hold_replies:
            now = self._ctx.clock.monotonic()
            self._request(
                _Response(self._ctx.new_turn(trigger, end_of_turn_at=now, final_at=now)), None
            )

    def say(
        self, text: str, *, source: str, interrupt: bool = False, interruptible: bool = True
    ) -> asyncio.Future[None]:
        if interrupt:
            self._barge_in()
        timer = self._ctx.new_turn(source) if source == "first-message" else None
        return self._request(_Response(timer, source=source), VERBATIM.format(text))

    def _request(self, response: _Response, instructions: str | None) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        response.waiters.append(done)
        self._requested.append(response)
        self._outbox.put_nowait(lambda: self.session.respond(instructions))
        return done

    # --- tasks -------------------------------------------------------------------------------
    async def _send_audio(self) -> None:
        usage = self._ctx.usage
        with stage("realtime"):
            async for frame in self._ctx.transport.audio():
                usage.realtime_input_seconds += len(frame) / (SAMPLE_RATE * BYTES_PER_SAMPLE)
                await self.session.send_audio(frame)
        self._ctx.end(ended_reasons.CUSTOMER_ENDED_CALL)

    async def _send_requests(self) -> None:
        while True:
            send = await self._outbox.get()
            with stage("realtime"):
                await send()

    async def _receive(self) -> None:
        async for event in self.session.events():
            if isinstance(event, RealtimeAudio):
                await self._audio(event)
            elif isinstance(event, RealtimeTranscript):
                self._transcript(event)
            elif isinstance(event, RealtimeSpeechStarted):
                self._ctx.caller_started()
                self._barge_in()
            elif isinstance(event, RealtimeSpeechStopped):
                now = self._ctx.clock.monotonic()
                self._speech_stopped_at = now
                self._user_turn = self._ctx.new_turn("user", end_of_turn_at=now)
                self._ctx.caller_stopped()
            elif isinstance(event, RealtimeToolCall):
                # the turn goes on in the response to the (first) tool result
                response = self._current()
                self._record_call(response, event.call)
                handed = None if response.hands_over else response.timer
                if response.timer is not None:
                    response.timer.tool_calls.append(event.call.name)
                    response.hands_over = True
                assert self._tg is not None
                self._tg.create_task(self._tool_call(event.call, handed))
            elif isinstance(event, RealtimeResponseDone):
                self._response_done(event)
            elif isinstance(event, RealtimeError):
                if event.fatal:
                    error = ProviderError(self._model.provider, event.message)
                    raise PipelineFailure("realtime", error)
                log.warning("realtime vendor error: %s", event.message)
        raise PipelineFailure(
            "realtime", ProviderError(self._model.provider, "event stream ended unexpectedly")
        )

    # --- vendor events ----------------------------------------------------------------------
    def _current(self) -> _Response:
        if self._response is None:
            if self._requested:
                self._response = self._requested.popleft()
            else:
                timer, self._user_turn = self._user_turn, None
                self._response = _Response(timer or self._ctx.new_turn("vendor"))
            self._ctx.agent_started()
        return self._response

    async def _audio(self, event: RealtimeAudio) -> None:
        response = self._current()
        if response.interrupted or not event.pcm:
            return
        ctx = self._ctx
        ctx.usage.realtime_output_seconds += len(event.pcm) / (event.sample_rate * BYTES_PER_SAMPLE)
        resampler = self._resamplers.get(event.sample_rate)
        if resampler is None:
            resampler = self._resamplers[event.sample_rate] = Resampler(
                event.sample_rate, SAMPLE_RATE
            )
        pcm = resampler.process(event.pcm)
        if not pcm:
            return
        transport = ctx.transport
        position = transport.played_samples + transport.queued_samples
        if response.segment is None:
            response.segment = Segment(response.text, position, position)
            response.utterance.segments.append(response.segment)
            response.utterance.started_at = ctx.clock.monotonic()
            if response.timer is not None:
                response.timer.audio_out(ctx.clock.monotonic())
        await transport.send(pcm)
        response.segment.end = position + len(pcm) // BYTES_PER_SAMPLE

    def _transcript(self, event: RealtimeTranscript) -> None:
        ctx = self._ctx
        if event.role == "assistant":
            response = self._current()
            response.text = event.text if event.is_final else response.text + event.text
            if response.segment is not None:
                response.segment.text = response.text
            return
        if not event.is_final or not event.text.strip():
            return
        text = event.text.strip()
        verdict = ctx.voicemail.examine(text)
        ctx.transcript.user(text, start=self._speech_stopped_at)
        now = ctx.clock.monotonic()
        for live in (self._response, self._draining):
            timer = live.timer if live is not None else None
            if timer is not None and timer.trigger == "user" and timer.final_at is None:
                timer.final_at = now
        if self._user_turn is not None:
            self._user_turn.final_at = now
        if verdict is Verdict.VOICEMAIL or ctx.hold_replies:
            self._barge_in()  # the session answers this utterance itself

    def _response_done(self, event: RealtimeResponseDone) -> None:
        ctx = self._ctx
        ctx.usage.llm_prompt_tokens += event.input_tokens
        ctx.usage.llm_completion_tokens += event.output_tokens
        response = self._current()
        self._response = None
        if response.timer is not None:
            response.timer.prompt_tokens += event.input_tokens
            response.timer.completion_tokens += event.output_tokens
        self._draining = response
        assert self._tg is not None
        self._tg.create_task(self._finish(response))

    async def _finish(self, response: _Response) -> None:
        """After the vendor is done: let the audio play out, record what was said."""
        ctx = self._ctx
        try:
            while ctx.transport.queued_samples > 0 and not response.interrupted:
                await ctx.clock.sleep(0.02)
            if not response.interrupted and response.text:
                self._learn_pace(response)
                if not response.recorded:
                    ctx.transcript.assistant(
                        response.text,
                        start=response.utterance.started_at,
                        end=ctx.clock.monotonic(),
                        source=response.source,
                    )
        finally:
            if self._draining is response:
                self._draining = None
            ctx.agent_stopped()
            if response.timer is not None and not response.hands_over:
                response.timer.interrupted = response.interrupted
                ctx.turn_done(response.timer)
            _settle(response)

    def _barge_in(self) -> None:
        """The caller talks: drop queued agent audio and cancel what the vendor says."""
        transport = self._ctx.transport
        transport.clear()
        for response in (self._draining, self._response):
            if response is None or response.interrupted:
                continue
            response.interrupted = True
            heard = self._heard(response, transport.played_samples)
            if not response.recorded:
                self._ctx.transcript.assistant(
                    heard,
                    start=response.utterance.started_at,
                    interrupted=True,
                    source=response.source,
                )
            self._ctx.emit(CallerInterrupted(self._ctx.clock.monotonic(), heard, response.text))
        if self._response is not None:
            self._outbox.put_nowait(self.session.cancel)

    def _heard(self, response: _Response, played: int) -> str:
        """The words of ``response`` the caller heard: their share of its audio played.

        While the vendor is still sending, its transcript runs ahead of its audio
        (the share would count words not spoken yet), so it is also capped by the
        voice's pace, learned from the responses played in full.
        """
        heard = response.utterance.heard(played)
        segment = response.segment
        if response is not self._response or segment is None:
            return heard
        pace = (
            self._pace_words / self._pace_seconds
            if self._pace_seconds >= 1.0
            else DEFAULT_WORDS_PER_SECOND
        )
        limit = round(max(0, played - segment.start) / SAMPLE_RATE * pace)
        words = heard.split()
        return " ".join(words[:limit]) if len(words) > limit else heard

    def _learn_pace(self, response: _Response) -> None:
        segment = response.segment
        if segment is not None and segment.end > segment.start:
            self._pace_words += len(response.text.split())
            self._pace_seconds += (segment.end - segment.start) / SAMPLE_RATE

    # --- tools ---------------------------------------------------------------------------------
    def _record_call(self, response: _Response, call: ToolCall) -> None:
        """Record a tool call with the words its response said before it (a goodbye
        before ``endCall``), as the cascade records a round's words with its calls:
        the words come first in the record, not when their audio has played out."""
        said = "" if response.recorded or response.interrupted else response.text
        self._ctx.transcript.assistant(said, start=response.utterance.started_at, tool_calls=[call])
        response.recorded = True

    async def _tool_call(self, call: ToolCall, turn: TurnTimer | None) -> None:
        """Run one tool; the vendor's answer to its result carries the caller's ``turn``."""
        ctx = self._ctx
        tools = ctx.tools
        function = tools.function(call.name)
        if function is not None and function.is_async:
            result = tools.fire_async([call])[0]
            if function.async_response:
                result = ToolResult(call.id, call.name, function.async_response)
        elif function is not None:
            result = (await tools.run_sync([call]))[0]
        elif call.name == END_CALL_TOOL and tools.builtin(END_CALL_TOOL):
            since = tools.started(call, "endCall")
            result = ToolResult(call.id, call.name, "The call is ending.")
            ctx.transcript.tool_result(call.id, call.name, result.content)
            tools.finished(result, since)
            await self._drained()
            if turn is not None:
                ctx.turn_done(turn)
            ctx.end(ended_reasons.ASSISTANT_ENDED_CALL)
            return
        elif call.name == TRANSFER_CALL_TOOL and tools.builtin(TRANSFER_CALL_TOOL):
            result = await self._transfer(call)
            if result.error is None:
                ctx.transcript.tool_result(call.id, call.name, result.content)
                if turn is not None:
                    ctx.turn_done(turn)
                ctx.end(ended_reasons.ASSISTANT_FORWARDED_CALL)
                return
        elif call.name == SEND_DTMF_TOOL and tools.builtin(SEND_DTMF_TOOL):
            result = await self._send_dtmf(call)
        else:
            result = error_result(call, f"unknown tool {call.name!r}")
        ctx.transcript.tool_result(call.id, call.name, result.content)
        # sending the result asks for a response: it is the next one, in request order
        self._requested.append(_Response(turn))
        self._outbox.put_nowait(lambda: self.session.send_tool_result(call.id, result.content))

    async def _drained(self) -> None:
        while self._ctx.transport.queued_samples > 0:
            await self._ctx.clock.sleep(0.02)

    async def _transfer(self, call: ToolCall) -> ToolResult:
        ctx = self._ctx
        since = ctx.tools.started(call, "transferCall")
        target = str(call.arguments.get("destination", ""))
        destination = ctx.tools.destination(target)
        if destination is None:
            result = error_result(call, f"unknown destination {target!r}")
        else:
            if destination.message:
                await self.say(destination.message, source="transfer")
            await self._drained()
            outcome = await ctx.transfer(destination.target)
            result = (
                ToolResult(call.id, call.name, f"Transferred to {destination.target}.")
                if outcome.ok
                else error_result(call, f"the transfer failed: {outcome.detail or 'refused'}")
            )
        ctx.tools.finished(result, since)
        return result

    async def _send_dtmf(self, call: ToolCall) -> ToolResult:
        since = self._ctx.tools.started(call, "sendDtmf")
        digits = str(call.arguments.get("digits", "")).strip().upper()
        if not digits or any(d not in VALID_DIGITS for d in digits):
            result = error_result(call, f"invalid digits {json.dumps(digits)}")
        else:
            await self._drained()
            await self._ctx.transport.send_dtmf(digits)
            result = ToolResult(call.id, call.name, f"Pressed {digits}.")
        self._ctx.tools.finished(result, since)
        return result


def _settle(response: _Response) -> None:
    for waiter in response.waiters:
        if not waiter.done():
            waiter.set_result(None)
