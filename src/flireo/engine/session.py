"""One live conversation: :class:`CallSession` wires the parts together and owns the
call's lifetime. It holds no conversation logic itself:

- the pipeline (:mod:`~flireo.engine.cascade` or :mod:`~flireo.engine.realtime_session`)
  listens and talks;
- the session runs the call-level timers and inputs around it: first message
  (held for the voicemail verdict on outbound calls with detection), DTMF
  entries, remote hang-up, control commands, silence handling, max duration;
- it ends exactly once, whatever happens (hang-up, vendor failure, bug,
  cancellation of :meth:`run`), tears everything down (one task group per call)
  and returns one :class:`~flireo.engine.outcome.CallOutcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeVar

import httpx

from flireo.clock import Clock
from flireo.engine import ended_reasons
from flireo.engine.cascade import CascadeConversation
from flireo.engine.config import SessionConfig
from flireo.engine.context import CallContext, Conversation
from flireo.engine.control import (
    CONTROL_LIMIT,
    CallNotActive,
    ControlCommand,
    ControlRateLimiter,
    EndCall,
    InjectContext,
    Say,
    Transfer,
    parse_control,
)
from flireo.engine.dtmf import DtmfCollector
from flireo.engine.ended_reasons import PipelineFailure
from flireo.engine.events import (
    CallEnded,
    ControlApplied,
    EventPump,
    EventSink,
    StatusChanged,
)
from flireo.engine.events import MessageAdded as MessageAddedEvent
from flireo.engine.metrics import Usage
from flireo.engine.outcome import CallOutcome
from flireo.engine.realtime_session import RealtimeConversation
from flireo.engine.silence import GOODBYE_PROMPT, SilenceWatchdog, check_prompt
from flireo.engine.tools import ToolRunner
from flireo.engine.transcript import Transcript
from flireo.engine.transport import AudioTransport, DtmfDigit, RemoteHangup
from flireo.engine.voicemail import Verdict, VoicemailGate, voicemail_summary
from flireo.providers.llm.base import LanguageModel
from flireo.providers.realtime.base import RealtimeModel
from flireo.providers.stt.base import SpeechToText
from flireo.providers.tts.base import TextToSpeech

log = logging.getLogger(__name__)

#: bounds on the wind-down, so a stuck vendor or sink never keeps a call alive
GOODBYE_DEADLINE_S = 15.0
SINK_DEADLINE_S = 5.0
_GREETING_GIVE_UP_S = 30.0
E = TypeVar("E", bound=BaseException)


class CallSession:
    """Run one call: ``outcome = await CallSession(config, ...).run()``.

    Give either ``stt`` + ``llm`` + ``tts`` (cascade) or ``realtime``
    (speech to speech). The session does not close the providers or ``http``.
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        transport: AudioTransport,
        clock: Clock,
        http: httpx.AsyncClient,
        events: EventSink | None = None,
        stt: SpeechToText | None = None,
        llm: LanguageModel | None = None,
        tts: TextToSpeech | None = None,
        realtime: RealtimeModel | None = None,
        allow_private_urls: bool = False,
        control_limit: int = CONTROL_LIMIT,
    ) -> None:
        cascade = stt is not None and llm is not None and tts is not None
        if cascade == (realtime is not None) or (
            realtime is not None and (stt or llm or tts) is not None
        ):
            raise ValueError("give stt, llm and tts, or realtime alone")
        self.config = config
        self._transport = transport
        self._clock = clock
        self._http = http
        self._sink = events
        self._stt, self._llm, self._tts, self._realtime = stt, llm, tts, realtime
        self._allow_private = allow_private_urls
        self._limiter = ControlRateLimiter(clock, limit=control_limit)
        self._commands: asyncio.Queue[ControlCommand] = asyncio.Queue()
        self._ctx: CallContext | None = None
        self._started = False
        self.outcome: CallOutcome | None = None

    @property
    def active(self) -> bool:
        """Running and not ended: control commands are accepted."""
        return self._ctx is not None and not self._ctx.ending.ended

    # --- control -----------------------------------------------------------------------
    async def control(self, command: ControlCommand | Mapping[str, Any]) -> None:
        """Queue a control command (they run in order, right away).

        Raises :class:`~flireo.engine.control.CallNotActive` when the call is not
        live, :class:`~flireo.engine.control.ControlRateLimited` over the limit
        (``control_limit`` per minute; ``end-call`` is never refused by it), and
        ``pydantic.ValidationError`` for a malformed dict.
        """
        parsed = parse_control(command)
        if not self.active:
            raise CallNotActive()
        if not isinstance(parsed, EndCall):
            self._limiter.acquire()
        self._commands.put_nowait(parsed)

    # --- the call ------------------------------------------------------------------------
    async def run(self) -> CallOutcome:
        if self._started:
            raise RuntimeError("a CallSession runs once")
        self._started = True
        clock = self._clock
        pump = EventPump(self._sink)
        pump_task = asyncio.create_task(pump.run(), name="call-events")
        started_at, started_wall = clock.monotonic(), clock.now()
        recorder = self._transport.recorder
        if recorder is not None and recorder.started_at is not None:
            # the call's zero is the recording's: every secondsFromStart is an offset
            # into the file
            started_wall -= timedelta(seconds=started_at - recorder.started_at)
            started_at = recorder.started_at
        usage = Usage()
        transcript = Transcript(
            clock,
            started_at=started_at,
            started_wall=started_wall,
            on_message=lambda m: pump.put(MessageAddedEvent(m)),
        )
        tools = ToolRunner(
            self.config,
            http=self._http,
            clock=clock,
            allow_private_urls=self._allow_private,
            emit=pump.put,
            spawn=lambda coro: self._context().spawn(coro),
            realtime=self._realtime is not None,
        )
        voicemail_active = (
            self.config.voicemail.enabled and self.config.call.direction == "outbound"
        )
        ctx = self._ctx = CallContext(
            self.config,
            clock=clock,
            transport=self._transport,
            pump=pump,
            tools=tools,
            transcript=transcript,
            voicemail=VoicemailGate(active=voicemail_active),
            usage=usage,
        )
        # on outbound calls with voicemail detection the first message waits for the verdict
        ctx.hold_replies = voicemail_active and bool(self.config.first_message)
        for message in self.config.messages:
            transcript.prompt(message.role, message.content)
        conversation = self._conversation(ctx)
        pump.put(StatusChanged("in-progress", started_wall))
        try:
            try:
                await self._converse(ctx, conversation)
            except asyncio.CancelledError:
                ctx.end(ended_reasons.CALL_CANCELLED)
                raise
            finally:
                self.outcome = await self._wind_down(ctx, conversation, started_at, started_wall)
                pump.put(
                    StatusChanged(
                        "ended",
                        self.outcome.ended_at,
                        self.outcome.ended_reason,
                        self.outcome.error,
                    )
                )
                pump.put(CallEnded(self.outcome))
        finally:
            await pump.close(SINK_DEADLINE_S)
            if not pump_task.done():
                pump_task.cancel()
            await asyncio.wait([pump_task])
            # the context refers back to this session (tools spawn through it): let
            # the call's objects go by reference counting, not a full GC pass
            self._ctx = None
        return self.outcome

    def _context(self) -> CallContext:
        assert self._ctx is not None
        return self._ctx

    def _conversation(self, ctx: CallContext) -> Conversation:
        if self._realtime is not None:
            return RealtimeConversation(ctx, self._realtime)
        assert self._stt is not None
        assert self._llm is not None
        assert self._tts is not None
        return CascadeConversation(ctx, stt=self._stt, llm=self._llm, tts=self._tts)

    async def _converse(self, ctx: CallContext, conversation: Conversation) -> None:
        background: set[asyncio.Task[None]] = set()
        try:
            async with asyncio.TaskGroup() as tg:

                def spawn(coro: Any) -> None:
                    task = tg.create_task(coro)
                    background.add(task)
                    task.add_done_callback(background.discard)

                ctx.set_spawner(spawn)
                await conversation.open()
                dtmf = DtmfCollector(
                    ctx.clock,
                    timeout_s=self.config.dtmf.inter_digit_timeout_s,
                    on_entry=lambda text: conversation.user_input(text, trigger="dtmf"),
                )
                main = [
                    tg.create_task(conversation.run(), name="call-conversation"),
                    tg.create_task(self._transport_events(ctx, dtmf), name="call-transport"),
                    tg.create_task(dtmf.run(), name="call-dtmf"),
                    tg.create_task(self._control_loop(ctx, conversation), name="call-control"),
                    tg.create_task(self._greet(ctx, conversation), name="call-greeting"),
                ]
                if self.config.silence.enabled or self.config.silence.timeout_s is not None:
                    ctx.silence = SilenceWatchdog(
                        self.config.silence,
                        ctx.clock,
                        on_check=lambda n: self._silence_check(conversation, n),
                        on_end=lambda: self._silence_end(ctx, conversation),
                    )
                    main.append(tg.create_task(ctx.silence.run(), name="call-silence"))
                if self.config.max_duration_seconds is not None:
                    main.append(
                        tg.create_task(self._max_duration(ctx, conversation), name="call-limit")
                    )
                await ctx.ending.wait()
                for task in main:
                    task.cancel()
                await self._settle_background(background)
        except* PipelineFailure as group:
            failure = _first(group, PipelineFailure)
            log.warning("call %s: %s", self.config.call.call_id, failure)
            ctx.end(failure.ended_reason, error=str(failure.error))
        except* Exception as group:
            log.error("call %s failed", self.config.call.call_id, exc_info=_first(group, Exception))
            error = _first(group, Exception)
            ctx.end(ended_reasons.UNKNOWN_ERROR, error=f"{type(error).__name__}: {error}"[:500])
        finally:
            ctx.set_spawner(None)

    async def _settle_background(self, background: set[asyncio.Task[None]]) -> None:
        """Give async tool webhooks in flight a little time, then cancel them."""
        pending = [t for t in background if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=self.config.async_tool_grace_s)
            for task in pending:
                task.cancel()

    async def _wind_down(
        self,
        ctx: CallContext,
        conversation: Conversation,
        started_at: float,
        started_wall: Any,
    ) -> CallOutcome:
        ctx.end(ended_reasons.CUSTOMER_ENDED_CALL)  # no-op unless nothing ended it
        with contextlib.suppress(Exception):
            await self._transport.hangup()
        with contextlib.suppress(Exception):
            await conversation.close()
        ended = ctx.ending.result
        assert ended is not None
        clock = ctx.clock
        ended_mono = clock.monotonic()
        if ctx.transferred_to is not None:
            ctx.details["transferredTo"] = ctx.transferred_to
        return CallOutcome(
            call_id=self.config.call.call_id,
            ended_reason=ended.reason,
            started_at=started_wall,
            ended_at=ctx.transcript.wall(ended_mono),
            started_monotonic=started_at,
            ended_monotonic=ended_mono,
            messages=ctx.transcript.messages(),
            transcript=ctx.transcript.text(),
            turns=list(ctx.turns),
            usage=ctx.usage,
            error=ended.error,
            summary=ctx.summary,
            transferred_to=ctx.transferred_to,
            details=dict(ctx.details),
        )

    # --- call-level inputs and timers ------------------------------------------------------
    async def _transport_events(self, ctx: CallContext, dtmf: DtmfCollector) -> None:
        async for event in self._transport.events():
            if isinstance(event, DtmfDigit):
                ctx.caller_pressed_key()
                dtmf.press(event.digit)
            elif isinstance(event, RemoteHangup):
                ctx.end(event.reason or ended_reasons.CUSTOMER_ENDED_CALL)
                return
        ctx.end(ended_reasons.CUSTOMER_ENDED_CALL)

    async def _greet(self, ctx: CallContext, conversation: Conversation) -> None:
        first = self.config.first_message
        gate = ctx.voicemail
        if gate.pending:
            verdict = await self._voicemail_verdict(ctx)
            if verdict is Verdict.VOICEMAIL:
                await self._leave_voicemail(ctx, conversation)
                return
        ctx.hold_replies = False
        if first:
            await conversation.say(first, source="first-message")

    async def _voicemail_verdict(self, ctx: CallContext) -> Verdict:
        gate = ctx.voicemail
        waited = 0.0
        wait_s = self.config.voicemail.greeting_wait_s
        while gate.pending:
            if (not ctx.caller_spoke and waited >= wait_s) or waited >= _GREETING_GIVE_UP_S:
                gate.give_up()
                break
            await ctx.clock.sleep(0.05)
            waited += 0.05
        return await gate.verdict()

    async def _leave_voicemail(self, ctx: CallContext, conversation: Conversation) -> None:
        message = (self.config.voicemail.message or "").strip() or None
        ctx.summary = voicemail_summary(message)
        ctx.details["voicemailPhrase"] = ctx.voicemail.phrase
        await self._close_with(ctx, conversation, ended_reasons.VOICEMAIL, message)

    async def _close_with(
        self,
        ctx: CallContext,
        conversation: Conversation,
        reason: str,
        message: str | None,
        *,
        source: str = "goodbye",
    ) -> None:
        """Say ``message`` (nothing can interrupt it), then end with ``reason``."""
        ctx.closing = True
        if message:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GOODBYE_DEADLINE_S):
                    await conversation.say(
                        message, source=source, interrupt=True, interruptible=False
                    )
        ctx.end(reason)

    async def _max_duration(self, ctx: CallContext, conversation: Conversation) -> None:
        assert self.config.max_duration_seconds is not None
        await ctx.clock.sleep(self.config.max_duration_seconds)
        await self._close_with(
            ctx,
            conversation,
            ended_reasons.EXCEEDED_MAX_DURATION,
            self.config.max_duration_message,
        )

    async def _silence_check(self, conversation: Conversation, check: int) -> None:
        conversation.add_context(check_prompt(check), source="silence-handling")
        conversation.respond("silence")

    async def _silence_end(self, ctx: CallContext, conversation: Conversation) -> None:
        if self.config.silence.enabled:
            conversation.add_context(GOODBYE_PROMPT, source="silence-handling")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GOODBYE_DEADLINE_S):
                    await conversation.respond("silence", tools=False)
        ctx.closing = True
        ctx.end(ended_reasons.SILENCE_TIMED_OUT)

    async def _control_loop(self, ctx: CallContext, conversation: Conversation) -> None:
        while True:
            command = await self._commands.get()
            detail = ""
            if isinstance(command, InjectContext):
                conversation.add_context(command.content, source="control")
                if command.trigger_response:
                    conversation.respond("control")
            elif isinstance(command, Say):
                done = conversation.say(command.content, source="control")
                if command.end_after:
                    await done
                    ctx.end(ended_reasons.ASSISTANT_ENDED_CALL_WITH_MESSAGE)
            elif isinstance(command, EndCall):
                await self._close_with(
                    ctx, conversation, ended_reasons.MANUALLY_ENDED, command.message
                )
            elif isinstance(command, Transfer):
                detail = await self._control_transfer(ctx, conversation, command)
            ctx.emit(ControlApplied(command.type, ok=not detail, detail=detail))

    async def _control_transfer(
        self, ctx: CallContext, conversation: Conversation, command: Transfer
    ) -> str:
        if command.message:
            await conversation.say(
                command.message, source="transfer", interrupt=True, interruptible=False
            )
        result = await ctx.transfer(command.destination)
        if result.ok:
            ctx.end(ended_reasons.ASSISTANT_FORWARDED_CALL)
            return ""
        detail = result.detail or "refused"
        conversation.add_context(
            f"Transferring the caller to {command.destination} failed ({detail}). "
            "Tell the caller and continue helping them.",
            source="control",
        )
        conversation.respond("control")
        return f"transfer failed: {detail}"


def _first(group: BaseExceptionGroup[Any], kind: type[E]) -> E:
    """The first ``kind`` exception inside a (possibly nested) exception group."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            with contextlib.suppress(LookupError):
                return _first(exc, kind)
        elif isinstance(exc, kind):
            return exc
    raise LookupError(kind)
