"""The cascade pipeline: caller audio → VAD/STT turns → LLM replies → TTS → transport.

Everything the agent says is an *activity* (an LLM reply, a fixed ``say``);
one runs at a time, in order, each as a task of the pipeline's task group so a
barge-in can cancel it. A caller turn supersedes: it cancels the running
activity and the queued replies, then queues its own reply. Barge-in while an
activity runs follows :mod:`flireo.engine.interruption`; the audio queued in
the transport is dropped at once (``clear()``), the LLM stream and TTS are
cancelled, and the transcript keeps only what the caller heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from flireo.engine import ended_reasons
from flireo.engine.context import CallContext
from flireo.engine.ended_reasons import stage
from flireo.engine.events import CallerInterrupted
from flireo.engine.interruption import holds_now, interrupts_after, interrupts_now
from flireo.engine.metrics import TurnTimer
from flireo.engine.phrases import FIXED_PHRASE_SOURCES
from flireo.engine.reply import Replier, Speaking
from flireo.engine.sentences import split_sentences
from flireo.engine.speech import Playout, Utterance
from flireo.engine.turns import TurnTaker
from flireo.engine.turns import Utterance as CallerUtterance
from flireo.engine.voicemail import Verdict
from flireo.providers.llm.base import LanguageModel
from flireo.providers.stt.base import SpeechToText, SpeechToTextStream
from flireo.providers.tts.base import TextToSpeech

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Activity:
    kind: str  # "reply" | "say"
    body: Callable[[Speaking], Coroutine[Any, Any, None]]
    done: asyncio.Future[None]
    interruptible: bool = True
    speaking: Speaking = field(default_factory=Speaking)
    task: asyncio.Task[None] | None = None
    stopped: bool = False

    def settle(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class CascadeConversation:
    def __init__(
        self,
        ctx: CallContext,
        *,
        stt: SpeechToText,
        llm: LanguageModel,
        tts: TextToSpeech,
    ) -> None:
        self._ctx = ctx
        self._stt = stt
        self._playout = Playout(tts, ctx.transport, ctx.clock, ctx.usage)
        self._replier = Replier(ctx, llm, self._playout)
        self._stream: SpeechToTextStream | None = None
        self._turns: TurnTaker | None = None
        self._queue: deque[Activity] = deque()
        self._wake = asyncio.Event()
        self._current: Activity | None = None
        #: ends a hold of the agent's speech (see BargeIn.hold_ms) if no final came
        self._hold_timer: asyncio.TimerHandle | None = None
        self._tg: asyncio.TaskGroup | None = None

    # --- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        config = self._ctx.config
        with stage("transcriber"):
            self._stream = await self._stt.open(
                language=config.language, keyterms=config.stt_keyterms
            )
        self._turns = TurnTaker(
            self._stream,
            utterance_based=self._stt.utterance_based,
            endpointing=config.endpointing,
            clock=self._ctx.clock,
            listener=self,
            usage=self._ctx.usage,
        )

    async def run(self) -> None:
        assert self._turns is not None
        # no local name for the group: a cancelled call's traceback keeps this frame,
        # and the group refers to our task, so a local would tie the whole call into
        # a reference cycle only a full GC pass frees
        self._tg = asyncio.TaskGroup()
        try:
            async with self._tg:
                self._tg.create_task(self._listen(), name="cascade-listen")
                self._tg.create_task(self._transcripts(), name="cascade-transcripts")
                self._tg.create_task(self._work(), name="cascade-activities")
        except asyncio.CancelledError as exc:
            raise exc.with_traceback(None) from None
        finally:
            self._tg = None

    async def close(self) -> None:
        for activity in self._queue:
            activity.settle()
        self._queue.clear()
        if self._stream is not None:
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(3.0):
                    await self._stream.aclose()
        self._turns = None  # it refers back to this conversation (its listener)

    async def _listen(self) -> None:
        assert self._turns is not None
        with stage("transcriber"):
            await self._turns.consume(self._ctx.transport)
        self._ctx.end(ended_reasons.CUSTOMER_ENDED_CALL)  # the media ended

    async def _transcripts(self) -> None:
        assert self._turns is not None
        with stage("transcriber"):
            await self._turns.consume_transcripts()

    # --- what the session asks ------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    def add_context(self, text: str, *, source: str) -> None:
        self._ctx.transcript.system(text, source=source)

    def respond(self, trigger: str, *, tools: bool = True) -> asyncio.Future[None]:
        return self._reply(self._ctx.new_turn(trigger), tools=tools)

    def _reply(self, timer: TurnTimer, *, tools: bool = True) -> asyncio.Future[None]:
        async def body(speaking: Speaking) -> None:
            try:
                await self._replier.run(timer, speaking, tools=tools)
            finally:
                self._ctx.turn_done(timer)

        return self._enqueue(Activity("reply", body, self._future()))

    def user_input(self, text: str, *, trigger: str) -> None:
        if self._ctx.closing:
            return
        self._supersede()
        self._ctx.transcript.user(text)
        if not self._ctx.hold_replies:
            now = self._ctx.clock.monotonic()
            self._reply(self._ctx.new_turn(trigger, end_of_turn_at=now, final_at=now))

    def say(
        self, text: str, *, source: str, interrupt: bool = False, interruptible: bool = True
    ) -> asyncio.Future[None]:
        timer = self._ctx.new_turn(source) if source == "first-message" else None

        async def body(speaking: Speaking) -> None:
            utterance = speaking.utterance = Utterance()
            try:
                reuse = source in FIXED_PHRASE_SOURCES
                for sentence in split_sentences(text):
                    await self._playout.speak(sentence, utterance, timer, reuse=reuse)
                await self._playout.drained()
            except asyncio.CancelledError:
                heard = speaking.heard
                if heard is None:
                    heard = utterance.heard(self._playout.played)
                self._ctx.transcript.assistant(
                    heard, start=utterance.started_at, interrupted=True, source=source
                )
                raise
            finally:
                if timer is not None:
                    self._ctx.turn_done(timer)
            self._ctx.transcript.assistant(
                text, start=utterance.started_at, end=self._ctx.clock.monotonic(), source=source
            )

        activity = Activity("say", body, self._future(), interruptible=interruptible)
        if interrupt:
            self._interrupt(force=True)
            self._drop_queued()
            self._queue.appendleft(activity)
            self._wake.set()
            return activity.done
        return self._enqueue(activity)

    # --- activities ----------------------------------------------------------------------
    def _future(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    def _enqueue(self, activity: Activity) -> asyncio.Future[None]:
        self._queue.append(activity)
        self._wake.set()
        return activity.done

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            activity = self._queue.popleft()
            if activity.done.done():
                continue
            assert self._tg is not None
            self._current = activity
            self._ctx.agent_started()
            activity.task = self._tg.create_task(activity.body(activity.speaking))
            try:
                await asyncio.wait([activity.task])
            finally:
                self._ctx.agent_stopped()
                self._current = None
                activity.settle()

    def _drop_queued(self, kind: str | None = None) -> None:
        kept: deque[Activity] = deque()
        for activity in self._queue:
            if kind is None or activity.kind == kind:
                activity.settle()
            else:
                kept.append(activity)
        self._queue = kept

    def _supersede(self) -> None:
        """A new caller turn: stop talking and forget replies not started yet."""
        self._interrupt()
        self._drop_queued("reply")

    def _interrupt(self, *, force: bool = False) -> bool:
        """Stop the running activity now; True when it was stopped."""
        current = self._current
        if current is None or current.task is None or current.task.done():
            return False
        if current.stopped:
            return True
        if not current.interruptible and not force:
            return False
        current.stopped = True
        self._playout.stop()
        played = self._playout.played
        speaking = current.speaking
        speaking.heard = speaking.utterance.heard(played)
        self._ctx.emit(
            CallerInterrupted(
                self._ctx.clock.monotonic(), speaking.heard, speaking.utterance.intended
            )
        )
        current.task.cancel()
        return True

    # --- TurnListener: the caller ---------------------------------------------------------
    def speech_started(self, utterance: CallerUtterance) -> None:
        self._ctx.caller_started()
        utterance.over_agent = self.busy

    def speech_continues(self, utterance: CallerUtterance) -> None:
        if utterance.interrupted_agent or self._current is None:
            return
        utterance.over_agent = True
        policy = self._ctx.config.barge_in
        if (
            interrupts_now(policy, voiced_ms=utterance.voiced_ms, partial=utterance.partial)
            and self._interrupt()
        ):
            utterance.interrupted_agent = True
            self._drop_queued("reply")
            self._release_hold()
            return
        if (
            not utterance.held_agent
            and self._current.interruptible
            and holds_now(policy, voiced_ms=utterance.voiced_ms)
        ):
            utterance.held_agent = True
            self._hold()

    def _hold(self) -> None:
        """Hold the agent's speech while the caller's utterance is judged."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        self._playout.hold(True)
        self._hold_timer = asyncio.get_running_loop().call_later(
            self._ctx.config.barge_in.hold_max_s, self._release_hold
        )

    def _release_hold(self) -> None:
        """Let held speech go on (after a clear there is nothing left of it)."""
        timer, self._hold_timer = self._hold_timer, None
        if timer is not None:
            timer.cancel()
            self._playout.hold(False)

    def turn_ended(self, utterance: CallerUtterance) -> None:
        self._ctx.caller_stopped()

    def turn_final(self, utterance: CallerUtterance) -> None:
        try:
            self._turn_final(utterance)
        finally:
            self._release_hold()  # a real turn cleared the held speech; else it goes on

    def _turn_final(self, utterance: CallerUtterance) -> None:
        ctx = self._ctx
        text = utterance.text.strip()
        if not text:
            return
        verdict = ctx.voicemail.examine(text)
        if verdict is Verdict.VOICEMAIL:
            ctx.transcript.user(text, start=utterance.started_at, end=utterance.ended_at)
            return  # the session leaves the message
        if (
            self._current is not None
            and not utterance.interrupted_agent
            and not interrupts_after(ctx.config.barge_in, text)
        ):
            log.debug("ignored backchannel over the agent: %r", text)
            return
        ctx.transcript.user(text, start=utterance.started_at, end=utterance.ended_at)
        if ctx.closing:
            return
        self._supersede()  # a goodbye or transfer message that must not be cut goes on
        if ctx.hold_replies:
            return  # the first message answers this utterance
        timer = ctx.new_turn(
            "user",
            caller_started_at=utterance.started_at,
            end_of_turn_at=utterance.ended_at,
            final_at=utterance.final_at,
            endpointing_s=utterance.end_wait_s,
        )
        self._reply(timer)
