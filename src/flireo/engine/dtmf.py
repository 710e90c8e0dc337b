"""Keys the caller presses become one text input: ``"[DTMF] 1234#"``.

Digits are collected until ``#`` is pressed or no key came for the
inter-digit timeout (measured on the injected clock); then the whole entry
goes to the conversation as a user message, so an agent can ask for a PIN.
The agent presses keys itself with the built-in ``sendDtmf`` tool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from flireo.clock import Clock

DTMF_PREFIX = "[DTMF]"
VALID_DIGITS = frozenset("0123456789*#ABCD")


def dtmf_text(digits: str) -> str:
    return f"{DTMF_PREFIX} {digits}"


class DtmfCollector:
    def __init__(self, clock: Clock, *, timeout_s: float, on_entry: Callable[[str], None]) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._on_entry = on_entry
        self._digits: list[str] = []
        self._last_at = 0.0
        self._pressed = asyncio.Event()

    def press(self, digit: str) -> None:
        if digit not in VALID_DIGITS:
            return
        self._digits.append(digit)
        self._last_at = self._clock.monotonic()
        if digit == "#":
            self._flush()
        else:
            self._pressed.set()

    def _flush(self) -> None:
        self._pressed.clear()
        if self._digits:
            entry = "".join(self._digits)
            self._digits.clear()
            self._on_entry(dtmf_text(entry))

    async def run(self) -> None:
        """Flush entries whose keys stopped coming (runs for the whole call)."""
        while True:
            await self._pressed.wait()
            while self._digits:
                remaining = self._last_at + self._timeout_s - self._clock.monotonic()
                if remaining <= 0:
                    self._flush()
                    break
                await self._clock.sleep(remaining)
            self._pressed.clear()
