"""Driving a runner through simulated time, one pass at a time."""

from __future__ import annotations

from flireo.campaigns.runner import CampaignRunner
from flireo.clock import ManualClock
from tests.campaigns.carrier import SimulatedCarrier


async def drive(
    runner: CampaignRunner,
    clock: ManualClock,
    seconds: float,
    *carriers: SimulatedCarrier,
    max_step: float = 60.0,
) -> int:
    """Run passes for ``seconds`` of simulated time, each followed by the wait the
    runner asked for (at most ``max_step``, and no later than the next call end).
    Returns the number of passes."""
    end = clock.monotonic() + seconds
    passes = 0
    while clock.monotonic() < end - 1e-9:
        delay = await runner.run_once()
        passes += 1
        step = min(max(delay, 0.001), max_step, end - clock.monotonic())
        for carrier in carriers:
            due = carrier.next_end_in()
            if due is not None:
                step = min(step, max(due, 0.001))
        await clock.advance(step)
        for carrier in carriers:
            await carrier.settle()
    return passes
