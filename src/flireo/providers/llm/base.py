"""Language-model interface with OpenAI chat-completions semantics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class ChatMessage:
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: for ``role="tool"``: which call this result answers, and the tool's name
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """A complete tool call (arguments fully streamed and parsed)."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """Last event of a stream."""

    finish_reason: str
    usage: TokenUsage = TokenUsage()


LLMEvent = TextDelta | ToolCallReady | Completion


class LanguageModel(Protocol):
    provider: str
    model: str

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
    ) -> AsyncIterator[LLMEvent]:
        """Stream text deltas and tool calls; ends with one :class:`Completion`.

        Raises :class:`flireo.errors.ProviderError` on vendor failures.
        Cancelling the consuming task closes the HTTP stream.
        """
        ...
