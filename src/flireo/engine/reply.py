"""One LLM-driven agent turn of the cascade pipeline.

A round streams the LLM: text deltas go through the sentence splitter, and each
complete sentence is synthesized and queued while the LLM goes on (first audio
leaves before the LLM is done). When the round ends with tool calls they run
(while the round's words are still playing), their results are added and the
LLM is asked again, up to ``max_tool_rounds``. ``endCall`` and a successful
``transferCall`` end the call once everything said has been played.

Interrupted (cancelled) turns record what the caller heard and answer any open
tool call, so the LLM history stays valid.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from flireo.engine import ended_reasons
from flireo.engine.config import END_CALL_TOOL, SEND_DTMF_TOOL, TRANSFER_CALL_TOOL
from flireo.engine.context import CallContext
from flireo.engine.dtmf import VALID_DIGITS
from flireo.engine.ended_reasons import stage
from flireo.engine.metrics import TurnTimer
from flireo.engine.phrases import FIXED_PHRASE_SOURCES
from flireo.engine.sentences import SentenceSplitter, split_sentences
from flireo.engine.speech import Playout, Utterance
from flireo.engine.tool_webhook import ToolResult, error_result
from flireo.providers.llm.base import (
    Completion,
    LanguageModel,
    TextDelta,
    ToolCall,
    ToolCallReady,
)

INTERRUPTED_TOOL_RESULT = '{"error": "cancelled: the caller interrupted"}'


@dataclass(slots=True)
class Speaking:
    """What an agent activity is saying right now (read on barge-in)."""

    utterance: Utterance = field(default_factory=Utterance)
    #: set on barge-in: the words the caller heard before the agent stopped
    heard: str | None = None
    #: the round's text was already recorded with its tool calls
    recorded: bool = False


class Replier:
    def __init__(self, ctx: CallContext, llm: LanguageModel, playout: Playout) -> None:
        self._ctx = ctx
        self._llm = llm
        self._playout = playout
        self._filler_turn = 0

    async def run(self, timer: TurnTimer, speaking: Speaking, *, tools: bool = True) -> None:
        ctx = self._ctx
        try:
            for _ in range(ctx.config.max_tool_rounds):
                speaking.utterance = Utterance()
                speaking.recorded = False
                text, calls = await self._round(timer, speaking.utterance, tools=tools)
                if not calls:
                    await self._playout.drained()
                    self._record_said(text, speaking.utterance)
                    self._check_end_phrase(text)
                    return
                ctx.transcript.assistant(
                    text, start=speaking.utterance.started_at, tool_calls=calls
                )
                speaking.recorded = True
                timer.tool_calls.extend(c.name for c in calls)
                if not await self._run_tools(calls, speaking):
                    return
        except asyncio.CancelledError:
            timer.interrupted = True
            heard = speaking.heard
            if heard is None:
                heard = speaking.utterance.heard(self._playout.played)
            if not speaking.recorded:
                ctx.transcript.assistant(
                    heard,
                    start=speaking.utterance.started_at,
                    interrupted=True,
                )
            ctx.transcript.close_open_calls(INTERRUPTED_TOOL_RESULT)
            raise

    # --- one LLM round ---------------------------------------------------------------
    async def _round(
        self, timer: TurnTimer, utterance: Utterance, *, tools: bool
    ) -> tuple[str, list[ToolCall]]:
        ctx = self._ctx
        clock = ctx.clock
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        splitter = SentenceSplitter()
        parts: list[str] = []
        calls: list[ToolCall] = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._speak_queue(sentences, utterance, timer))
            try:
                timer.llm_requested(clock.monotonic())
                with stage("llm"):
                    async for event in self._llm.stream(
                        ctx.transcript.history(),
                        tools=ctx.tools.specs if tools else (),
                        temperature=ctx.config.temperature,
                        max_tokens=ctx.config.max_tokens,
                    ):
                        if isinstance(event, TextDelta):
                            timer.llm_token(clock.monotonic())
                            parts.append(event.text)
                            for sentence in splitter.push(event.text):
                                timer.llm_sentence(clock.monotonic())
                                sentences.put_nowait(sentence)
                        elif isinstance(event, ToolCallReady):
                            timer.llm_token(clock.monotonic())
                            calls.append(event.call)
                        elif isinstance(event, Completion):
                            ctx.usage.llm_prompt_tokens += event.usage.prompt_tokens
                            ctx.usage.llm_completion_tokens += event.usage.completion_tokens
                            timer.prompt_tokens += event.usage.prompt_tokens
                            timer.completion_tokens += event.usage.completion_tokens
                rest = splitter.flush()
                if rest:
                    timer.llm_sentence(clock.monotonic())
                    sentences.put_nowait(rest)
            finally:
                sentences.put_nowait(None)
        return "".join(parts).strip(), calls

    async def _speak_queue(
        self, sentences: asyncio.Queue[str | None], utterance: Utterance, timer: TurnTimer
    ) -> None:
        while (sentence := await sentences.get()) is not None:
            await self._playout.speak(sentence, utterance, timer)

    def _record_said(self, text: str, utterance: Utterance) -> None:
        if text:
            self._ctx.transcript.assistant(
                text, start=utterance.started_at, end=self._ctx.clock.monotonic()
            )

    def _check_end_phrase(self, text: str) -> None:
        lowered = text.lower()
        if any(p.lower() in lowered for p in self._ctx.config.end_call_phrases if p.strip()):
            self._ctx.end(ended_reasons.ASSISTANT_SAID_END_CALL_PHRASE)

    # --- tools -------------------------------------------------------------------------
    async def _run_tools(self, calls: list[ToolCall], speaking: Speaking) -> bool:
        """Run one round's tool calls; False when the turn is over (call ended)."""
        ctx = self._ctx
        tools = ctx.tools
        results: dict[str, ToolResult] = {}
        sync_calls = [c for c in calls if (f := tools.function(c.name)) and not f.is_async]
        async_calls = [c for c in calls if (f := tools.function(c.name)) and f.is_async]
        for result in tools.fire_async(async_calls):
            results[result.call_id] = result
        if sync_calls:
            for result in await self._run_sync(sync_calls):
                results[result.call_id] = result
        end_call = transfer = None
        for call in calls:
            if call.id in results:
                continue
            if call.name == END_CALL_TOOL and tools.builtin(END_CALL_TOOL):
                end_call = call
            elif call.name == TRANSFER_CALL_TOOL and tools.builtin(TRANSFER_CALL_TOOL):
                transfer = call
            elif call.name == SEND_DTMF_TOOL and tools.builtin(SEND_DTMF_TOOL):
                results[call.id] = await self._send_dtmf(call)
            else:
                results[call.id] = error_result(call, f"unknown tool {call.name!r}")
        for call in calls:
            if call.id in results:
                ctx.transcript.tool_result(call.id, call.name, results[call.id].content)
        if end_call is not None:
            since = tools.started(end_call, "endCall")
            result = ToolResult(end_call.id, end_call.name, "The call is ending.")
            ctx.transcript.tool_result(end_call.id, end_call.name, result.content)
            tools.finished(result, since)
            await self._playout.drained()
            ctx.end(ended_reasons.ASSISTANT_ENDED_CALL)
            return False
        if transfer is not None:
            return await self._transfer(transfer)
        said = [
            f.async_response
            for c in async_calls
            if (f := tools.function(c.name)) is not None and f.async_response
        ]
        for text in said:
            await self._say_extra(text, speaking, in_history=True)
        # async tools that said their response need no second LLM round
        return not (said and len(async_calls) == len(calls))

    async def _run_sync(self, calls: list[ToolCall]) -> list[ToolResult]:
        fillers = self._ctx.config.fillers
        async with asyncio.TaskGroup() as tg:
            running = tg.create_task(self._ctx.tools.run_sync(calls))
            if fillers.phrases and fillers.delay_s >= 0:
                delay = tg.create_task(self._ctx.clock.sleep(fillers.delay_s))
                await asyncio.wait([running, delay], return_when=asyncio.FIRST_COMPLETED)
                delay.cancel()
                if not running.done():
                    phrase = fillers.phrases[self._filler_turn % len(fillers.phrases)]
                    self._filler_turn += 1
                    await self._say_extra(phrase, None, in_history=False, source="filler")
        return running.result()

    async def _say_extra(
        self,
        text: str,
        speaking: Speaking | None,
        *,
        in_history: bool,
        source: str | None = None,
    ) -> None:
        """Speak text outside the LLM's stream (fillers, async tool responses)."""
        utterance = Utterance()
        if speaking is not None:
            speaking.utterance = utterance
            speaking.recorded = False
        reuse = source in FIXED_PHRASE_SOURCES
        for sentence in split_sentences(text):
            await self._playout.speak(sentence, utterance, reuse=reuse)
        self._ctx.transcript.assistant(
            text,
            start=utterance.started_at,
            in_history=in_history,
            source=source,
        )
        if speaking is not None:
            speaking.recorded = True

    async def _send_dtmf(self, call: ToolCall) -> ToolResult:
        tools = self._ctx.tools
        since = tools.started(call, "sendDtmf")
        digits = str(call.arguments.get("digits", "")).strip().upper()
        if not digits or any(d not in VALID_DIGITS for d in digits):
            result = error_result(call, f"invalid digits {digits!r}: use 0-9, *, #, A-D")
        else:
            await self._playout.drained()
            await self._ctx.transport.send_dtmf(digits)
            result = ToolResult(call.id, call.name, f"Pressed {digits}.")
        tools.finished(result, since)
        return result

    async def _transfer(self, call: ToolCall) -> bool:
        ctx = self._ctx
        tools = ctx.tools
        since = tools.started(call, "transferCall")
        target = str(call.arguments.get("destination", ""))
        destination = tools.destination(target)
        if destination is None:
            result = error_result(call, f"unknown destination {target!r}")
        else:
            if destination.message:
                await self._say_extra(
                    destination.message, None, in_history=False, source="transfer"
                )
            await self._playout.drained()
            outcome = await ctx.transfer(destination.target)
            if outcome.ok:
                result = ToolResult(call.id, call.name, f"Transferred to {destination.target}.")
            else:
                result = error_result(call, f"the transfer failed: {outcome.detail or 'refused'}")
        ctx.transcript.tool_result(call.id, call.name, result.content)
        tools.finished(result, since)
        if result.error is None:
            ctx.end(ended_reasons.ASSISTANT_FORWARDED_CALL)
            return False
        return True
