"""Bring-your-own-key (resources.md §9, guides.md §3)."""

from __future__ import annotations

import typing
from typing import Literal

from pydantic import BaseModel, Field

from flireo.domain.common import Timestamp, Token, WireModel

#: the five documented providers plus every other vendor Flireo has a client for
ByokProvider = Literal[
    "deepgram",
    "openai",
    "elevenlabs",
    "xai",
    "resend",
    "anthropic",
    "groq",
    "mistral",
    "cartesia",
]
BYOK_PROVIDERS: tuple[str, ...] = typing.get_args(ByokProvider)


class ByokCreate(WireModel):
    provider: ByokProvider
    api_key: Token = Field(min_length=8, max_length=512)


class ByokDelete(WireModel):
    provider: ByokProvider


class ByokKeyInfo(BaseModel):
    provider: str
    secret_id: str
    masked_key: str
    updated_at: Timestamp


class ByokKeysResponse(BaseModel):
    success: bool = True
    #: ``{provider}_secret_id`` per provider: the vault reference, or null
    byok_keys: dict[str, str | None]
    keys: list[ByokKeyInfo]


class ModelOption(BaseModel):
    id: str
    name: str
    default: bool


class ProviderConfig(BaseModel):
    id: str
    name: str
    category: str
    docsUrl: str  # the documented wire name
    configured: bool
    models: list[ModelOption]


class ProviderConfigResponse(BaseModel):
    providers: list[ProviderConfig]
