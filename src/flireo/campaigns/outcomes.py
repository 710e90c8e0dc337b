"""What a finished call means for its lead: the outcome and whether to retry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from flireo.domain.calls import WORKER_DIED, DialEndedReason

Outcome = Literal["completed", "busy", "no-answer", "voicemail", "failed"]
#: outcomes worth another attempt (after ``retry_delay_seconds``, up to ``max_attempts``)
RETRYABLE: frozenset[str] = frozenset({"busy", "no-answer", "voicemail", "failed"})
VOICEMAIL_REASON = "voicemail"
#: endings after which the lead is never dialed again, whatever ``max_attempts`` says:
#: the worker died with the call, whose INVITE may well have reached the callee
NO_RETRY_REASONS: frozenset[str] = frozenset({WORKER_DIED})


def classify(ended_reason: str | None, *, answered: bool) -> Outcome:
    """The lead outcome of a finished call (``answered``: it reached ``in-progress``).
    An answered call is ``completed`` (final) unless a machine took it, however
    the conversation ended; an unanswered one is busy, no-answer or failed."""
    if ended_reason == DialEndedReason.BUSY:
        return "busy"
    if ended_reason == DialEndedReason.NO_ANSWER:
        return "no-answer"
    if ended_reason == VOICEMAIL_REASON:
        return "voicemail"
    if answered:
        return "completed"
    return "failed"


@dataclass(frozen=True, slots=True)
class LeadDecision:
    status: str
    next_attempt_at: datetime | None


def after_attempt(
    outcome: Outcome,
    *,
    attempts: int,
    max_attempts: int,
    retry_delay_seconds: int,
    ended_at: datetime,
    do_not_call: bool = False,
    retry: bool = True,
) -> LeadDecision:
    """The lead's status once an attempt had ``outcome``: final, or ``pending``
    again with the time of the next attempt (never when ``retry`` is false)."""
    if outcome == "completed":
        return LeadDecision("completed", None)
    if do_not_call:
        return LeadDecision("do-not-call", None)
    if attempts >= max_attempts or not retry:
        return LeadDecision(outcome, None)
    return LeadDecision("pending", ended_at + timedelta(seconds=retry_delay_seconds))
