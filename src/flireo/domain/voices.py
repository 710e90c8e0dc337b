"""The voice catalog (resources.md §8): what is actually usable on this server."""

from __future__ import annotations

from pydantic import BaseModel


class VoiceOut(BaseModel):
    id: str
    name: str
    provider: str
    language: str | None = None
    gender: str | None = None
    sample_rate: int | None = None
    #: "local" voices run on this server; "vendor" ones need the vendor's key
    kind: str


class VoicesResponse(BaseModel):
    voices: list[VoiceOut]
    #: voice ids grouped by language
    by_language: dict[str, list[str]]
    #: vendors whose voice list could not be fetched just now, with the reason
    unavailable: dict[str, str]
