"""Small helpers to drive a LanguageModel stream in tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from flireo.clock import ManualClock
from flireo.providers.llm.base import Completion, LLMEvent, TextDelta, ToolCallReady

T = TypeVar("T")


async def collect(stream: AsyncIterator[LLMEvent], within: float = 10.0) -> list[LLMEvent]:
    async with asyncio.timeout(within):
        return [event async for event in stream]


def text_of(events: list[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def calls_of(events: list[LLMEvent]) -> list[ToolCallReady]:
    return [e for e in events if isinstance(e, ToolCallReady)]


def completion_of(events: list[LLMEvent]) -> Completion:
    assert isinstance(events[-1], Completion), events
    assert sum(isinstance(e, Completion) for e in events) == 1
    return events[-1]


async def run_with_clock(work: Awaitable[T], clock: ManualClock, step: float = 0.1) -> T:
    """Run ``work`` while moving ``clock`` forward, so backoff sleeps end."""
    task = asyncio.ensure_future(work)
    async with asyncio.timeout(10):
        while not task.done():
            await clock.advance(step)
            await asyncio.sleep(0.005)
    return task.result()
