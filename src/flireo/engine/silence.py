"""What to do when the caller says nothing (guides.md §15).

With ``autonomous_silence_handling`` the agent checks in after 7 s of caller
silence, then every 12 s, at most 3 times; 12 s after the last check it says
goodbye and hangs up (``silence-timed-out``). Without it, an optional
``timeout_s`` hangs up after that much silence. Silence is only counted while
nobody talks: agent speech pauses the count (it restarts when the agent is
done) and caller speech or keys reset it, checks included.

:func:`next_step` is the pure schedule; :class:`SilenceWatchdog` runs it on the clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from flireo.clock import Clock
from flireo.engine.config import SilenceHandling

#: what the LLM is told for each check (it phrases the words to the conversation)
CHECK_PROMPTS = (
    "The caller has been silent for a while. In one short sentence, ask whether they "
    "are still there.",
    "The caller is still silent. In one short sentence, say you are still here if they "
    "need anything.",
    "The caller is still silent. In one short sentence, ask one last time whether they "
    "are still there.",
)
GOODBYE_PROMPT = (
    "The caller has not answered. Say a short, polite goodbye in one sentence; the call "
    "ends after it."
)
_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class SilenceStep:
    #: seconds of silence at which it happens
    after_s: float
    action: Literal["check", "end"]
    #: 1-based check number (0 for the end)
    check: int


def next_step(config: SilenceHandling, checks_done: int) -> SilenceStep | None:
    """The next thing to do after ``checks_done`` checks (None: never)."""
    if config.enabled:
        if checks_done == 0:
            return SilenceStep(config.first_check_s, "check", 1)
        if checks_done < config.max_checks:
            return SilenceStep(config.interval_s, "check", checks_done + 1)
        return SilenceStep(config.interval_s, "end", 0)
    if config.timeout_s is not None:
        return SilenceStep(config.timeout_s, "end", 0)
    return None


def check_prompt(check: int) -> str:
    return CHECK_PROMPTS[min(check, len(CHECK_PROMPTS)) - 1]


class SilenceWatchdog:
    """Counts caller silence on the clock and fires checks and the final goodbye."""

    def __init__(
        self,
        config: SilenceHandling,
        clock: Clock,
        *,
        on_check: Callable[[int], Awaitable[None]],
        on_end: Callable[[], Awaitable[None]],
    ) -> None:
        self._config = config
        self._clock = clock
        self._on_check = on_check
        self._on_end = on_end
        self._checks = 0
        self._quiet_since = clock.monotonic()
        self._busy = 0  # agent talking / caller talking: the count pauses

    @property
    def checks_done(self) -> int:
        return self._checks

    def caller_active(self) -> None:
        """The caller spoke or pressed keys: start over."""
        self._checks = 0
        self._quiet_since = self._clock.monotonic()

    def pause(self) -> None:
        """Someone is talking (nested: every pause needs a resume)."""
        self._busy += 1

    def resume(self) -> None:
        self._busy = max(0, self._busy - 1)
        if self._busy == 0:
            self._quiet_since = self._clock.monotonic()

    async def run(self) -> None:
        while (step := next_step(self._config, self._checks)) is not None:
            if self._busy:
                await self._clock.sleep(_POLL_S)
                continue
            remaining = self._quiet_since + step.after_s - self._clock.monotonic()
            if remaining > 0:
                await self._clock.sleep(remaining)  # deadlines only move later: re-check
                continue
            if step.action == "end":
                await self._on_end()
                return
            self._checks = step.check
            self._quiet_since = self._clock.monotonic()
            await self._on_check(step.check)
