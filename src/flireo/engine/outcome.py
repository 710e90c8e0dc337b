"""What :meth:`CallSession.run` returns: one record of how the call went."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flireo.engine.ended_reasons import is_error
from flireo.engine.metrics import TurnMetrics, Usage, summarize


@dataclass(frozen=True)
class CallOutcome:
    call_id: str
    #: see :mod:`flireo.engine.ended_reasons`
    ended_reason: str
    started_at: datetime
    ended_at: datetime
    started_monotonic: float
    ended_monotonic: float
    messages: list[dict[str, Any]]
    #: ``"AI: ...\nUser: ..."``
    transcript: str
    turns: list[TurnMetrics]
    usage: Usage
    #: what went wrong, for failures (``ProviderError`` text, exception type)
    error: str | None = None
    #: set when no analysis is needed, e.g. "Voicemail detected. Left message: ..."
    summary: str | None = None
    #: where a successful transfer sent the caller
    transferred_to: str | None = None
    #: any extra facts worth reporting (tool call counts, voicemail phrase...)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.ended_monotonic - self.started_monotonic)

    @property
    def failed(self) -> bool:
        """A vendor or internal failure ended the call (``ended-with-error``)."""
        return is_error(self.ended_reason)

    def metrics(self) -> dict[str, Any]:
        return summarize(self.turns)
