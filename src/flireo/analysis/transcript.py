"""Transcript text and message counts for analysis prompts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_SPEAKERS = {"assistant": "AI", "bot": "AI", "user": "User"}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content", message.get("message", ""))
    return content.strip() if isinstance(content, str) else ""


def transcript_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """``AI: ...`` / ``User: ...`` lines of the spoken conversation (no system or tool noise)."""
    lines = []
    for m in messages:
        speaker = _SPEAKERS.get(str(m.get("role", "")))
        text = _text(m)
        if speaker and text:
            lines.append(f"{speaker}: {text}")
    return "\n".join(lines)


def conversation_length(messages: Sequence[Mapping[str, Any]]) -> int:
    """Messages that count towards ``minMessagesThreshold``: what the parties said."""
    return sum(1 for m in messages if m.get("role") in ("user", "assistant") and _text(m))


def last_assistant_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for m in reversed(messages):
        if m.get("role") == "assistant" and _text(m):
            return _text(m)
    return None


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{{name}}`` for known names; other placeholders stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
