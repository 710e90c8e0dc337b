"""The in-memory line the engine tests talk over: a caller who is still speaking when
the call ends is not left waiting forever (an engine that ends the call on a vendor
error stops listening with caller audio still queued)."""

from __future__ import annotations

import asyncio

from flireo.clock import SystemClock
from flireo.engine.memory_transport import FRAME_BYTES, MemoryTransport


async def test_caller_says_returns_when_the_line_closes_with_audio_queued() -> None:
    transport = MemoryTransport(SystemClock())
    heard: list[bytes] = []
    listening = asyncio.create_task(transport.listen(heard.append))
    speaking = asyncio.create_task(transport.caller_says(bytes(FRAME_BYTES * 100)))  # 2 s
    await asyncio.sleep(0.2)
    assert heard
    assert not speaking.done()
    await transport.hangup()
    await asyncio.wait_for(speaking, 1)
    await asyncio.wait_for(listening, 1)
    assert len(heard) < 100
    # a closed line hears nothing more, and saying something returns at once
    await asyncio.wait_for(transport.caller_says(bytes(FRAME_BYTES * 10)), 1)
