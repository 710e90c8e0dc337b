"""Analysis templates (resources.md §11, guides.md §10)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field

from flireo.domain.agents import ChatMessageIn
from flireo.domain.common import JsonSchemaDoc, OutModel, Timestamp, WireModel


class AnalysisTemplateCreate(WireModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    system_prompt: str | None = Field(
        default=None,
        max_length=20_000,
        validation_alias=AliasChoices("system_prompt", "systemPrompt"),
    )
    user_prompt: str | None = Field(
        default=None, max_length=20_000, validation_alias=AliasChoices("user_prompt", "userPrompt")
    )
    schema_: JsonSchemaDoc = Field(alias="schema")
    messages: list[ChatMessageIn] | None = Field(default=None, max_length=20)
    min_messages_threshold: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        validation_alias=AliasChoices("min_messages_threshold", "minMessagesThreshold"),
    )


class AnalysisTemplateUpdate(WireModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    system_prompt: str | None = Field(
        default=None,
        max_length=20_000,
        validation_alias=AliasChoices("system_prompt", "systemPrompt"),
    )
    user_prompt: str | None = Field(
        default=None, max_length=20_000, validation_alias=AliasChoices("user_prompt", "userPrompt")
    )
    schema_: JsonSchemaDoc | None = Field(default=None, alias="schema")
    messages: list[ChatMessageIn] | None = Field(default=None, max_length=20)
    min_messages_threshold: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        validation_alias=AliasChoices("min_messages_threshold", "minMessagesThreshold"),
    )


class AnalysisTemplateOut(OutModel):
    id: str
    org_id: str
    name: str
    description: str | None
    system_prompt: str | None
    user_prompt: str | None
    schema_: dict[str, Any] = Field(alias="schema")
    messages: list[dict[str, Any]] | None
    min_messages_threshold: int | None
    created_at: Timestamp
    updated_at: Timestamp
