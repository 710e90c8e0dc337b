"""Voicemail detection on an outbound call's first utterance (guides.md §14).

:func:`voicemail_phrase` is the pure check; :class:`VoicemailGate` is the
one-time decision the session waits on before its first message: the callee's
first final transcript decides, or nothing is heard within the greeting wait
and the call goes on as a normal conversation.
"""

from __future__ import annotations

import asyncio
import re
from enum import Enum

#: trigger phrases from the guide, plus the same ideas in Dutch
VOICEMAIL_PHRASES_EN = (
    "voicemail", "voice mail", "leave a message", "leave your message", "please record",
    "record your message", "unavailable", "not available", "not here", "after the tone",
    "after the beep", "press star", "speak your message", "call back later", "mailbox",
    "beep", "message",
)  # fmt: skip
VOICEMAIL_PHRASES_NL = (
    "voicemail", "spreek een bericht in", "spreek uw bericht in", "spreek je bericht in",
    "laat een bericht achter", "bericht achterlaten", "inspreken", "niet bereikbaar",
    "niet beschikbaar", "niet aanwezig", "na de toon", "na de piep", "na het piepje",
    "druk op sterretje", "bel later terug", "later terugbellen", "terugbellen",
    "brievenbus", "piep", "bericht",
)  # fmt: skip
_PATTERN = re.compile(
    r"\b("
    + "|".join(
        re.escape(p)
        for p in sorted({*VOICEMAIL_PHRASES_EN, *VOICEMAIL_PHRASES_NL}, key=len, reverse=True)
    )
    + r")\b",
    re.IGNORECASE,
)


def voicemail_phrase(text: str) -> str | None:
    """The first voicemail phrase in ``text`` (case-insensitive, whole words), or None."""
    match = _PATTERN.search(" ".join(text.split()))
    return match.group(1).lower() if match else None


def voicemail_summary(message: str | None) -> str:
    if message:
        return f"Voicemail detected. Left message: {message}"
    return "Voicemail detected. No message left."


class Verdict(Enum):
    HUMAN = "human"
    VOICEMAIL = "voicemail"
    #: nothing was said within the greeting wait
    SILENT = "silent"


class VoicemailGate:
    """One-time verdict on the first utterance; inactive gates decide nothing."""

    def __init__(self, *, active: bool) -> None:
        self.active = active
        self.greeting: str | None = None
        self.phrase: str | None = None
        self._verdict: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        if not active:
            self._verdict.set_result(Verdict.HUMAN)

    @property
    def pending(self) -> bool:
        return not self._verdict.done()

    def examine(self, text: str) -> Verdict | None:
        """The first utterance's verdict; None once the gate has decided already."""
        if not self.pending:
            return None
        self.phrase = voicemail_phrase(text)
        self.greeting = text
        verdict = Verdict.VOICEMAIL if self.phrase else Verdict.HUMAN
        self._verdict.set_result(verdict)
        return verdict

    def give_up(self) -> None:
        if self.pending:
            self._verdict.set_result(Verdict.SILENT)

    async def verdict(self) -> Verdict:
        return await asyncio.shield(self._verdict)
