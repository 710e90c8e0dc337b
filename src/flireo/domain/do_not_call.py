"""The organization's do-not-call list: numbers no campaign ever dials."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from flireo.domain.common import E164, OutModel, Pagination, Timestamp, WireModel


class DoNotCallCreate(WireModel):
    phone_number: E164 = Field(validation_alias=AliasChoices("phone_number", "number"))
    reason: str | None = Field(default=None, max_length=500)


class DoNotCallOut(OutModel):
    phone_number: str
    reason: str | None
    #: ``api`` (added here), ``caller-request`` (the caller asked), ``agent``
    source: str
    created_at: Timestamp


class DoNotCallEnvelope(OutModel):
    entry: DoNotCallOut


class DoNotCallList(OutModel):
    entries: list[DoNotCallOut]
    pagination: Pagination
