"""Organization settings changed with ``PATCH /account`` (read back in ``GET /account``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from flireo.domain.common import WireModel


class AccountUpdate(WireModel):
    """Fields left out stay as they are."""

    recording_retention_days: int | None = Field(
        default=None,
        ge=0,
        le=36_500,
        validation_alias=AliasChoices("recording_retention_days", "recordingRetentionDays"),
        description="days a call recording is kept; 0 = forever (default 30)",
    )
