"""A lead's variables in the agent's words: the per-call overrides of a campaign call."""

from __future__ import annotations

from typing import Any

from flireo.domain.campaigns import fill_template


def call_overrides(
    system_message_template: str | None,
    first_message: str | None,
    variables: dict[str, Any],
) -> tuple[dict[str, Any], str | None]:
    """``(Call.overrides, Call.first_message)`` for one lead.

    ``overrides["system_message"]`` is the campaign prompt with ``{{name}}``
    placeholders filled; ``overrides["firstMessage"]`` (the key the
    assistant-request overrides use) and the returned first message are the
    agent's greeting filled the same way. Variables a template needs but the
    lead lacks stay as written (they were reported at upload).
    """
    overrides: dict[str, Any] = {"variables": dict(variables)}
    if system_message_template:
        overrides["system_message"] = fill_template(system_message_template, variables)
    greeting = fill_template(first_message, variables) if first_message else None
    if greeting is not None:
        overrides["firstMessage"] = greeting
    return overrides, greeting
