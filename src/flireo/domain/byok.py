"""Bring-your-own-key (resources.md §9, guides.md §3)."""

from __future__ import annotations

import typing
from typing import Literal

from pydantic import BaseModel, Field

from flireo.domain.common import Timestamp, Token, WireModel

#: the five documented providers plus every other vendor Flireo has a client for,
#: and the self-hosted OpenAI-compatible LLM servers an agent names by ``base_url``
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
    "ollama",
    "openai-compatible",
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


ProviderCategory = Literal["stt", "llm", "tts", "realtime", "email"]
#: where a provider's key comes from for this organization (null: no key at all)
KeySource = Literal["byok", "platform"]


class ModelOption(BaseModel):
    id: str
    name: str
    #: the provider's default model for ``category``
    default: bool
    category: ProviderCategory


class ProviderConfig(BaseModel):
    """``GET /byok/config`` entry: the reference's ``{id, name, category, docsUrl,
    models}`` plus what this organization has configured."""

    id: str
    name: str
    #: the main use; ``categories`` lists every use Flireo has for the provider
    category: ProviderCategory
    categories: list[ProviderCategory]
    docsUrl: str  # the documented wire name
    #: the organization stored a BYOK key for this provider
    configured: bool
    key_source: KeySource | None
    models: list[ModelOption]


class ProviderConfigResponse(BaseModel):
    providers: list[ProviderConfig]
