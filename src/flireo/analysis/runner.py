"""Post-call analysis: summary, structured data and success evaluation.

``analyze_call`` never raises for a vendor or model failure: every part that
fails is recorded in ``AnalysisOutcome.errors`` and the others still run.
JSON answers are validated (structured data against the plan's schema, the
success evaluation against its rubric) and repaired at most once by sending
the invalid answer and the validation errors back to the model.

The ``analysis`` object (end-of-call report, ``GET /calls/{id}``) carries the
structured fields at the top level, as the Flireo docs show
(``{"sentiment": 8, ...}``), and Vapi's keys ``summary``, ``structuredData``
and ``successEvaluation`` beside them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from flireo.analysis.prompts import (
    RUBRICS,
    STRUCTURED_SYSTEM,
    STRUCTURED_USER,
    SUCCESS_SYSTEM,
    SUCCESS_USER,
    SUMMARY_SYSTEM,
    SUMMARY_USER,
)
from flireo.analysis.transcript import (
    conversation_length,
    last_assistant_text,
    substitute,
    transcript_text,
)
from flireo.domain.agents import AnalysisPlan
from flireo.errors import ProviderError
from flireo.providers.llm.base import (
    ChatMessage,
    Completion,
    LanguageModel,
    TextDelta,
    TokenUsage,
)

RETRY_DELAYS = (0.5, 2.0)
_VAPI_KEYS = ("summary", "structuredData", "successEvaluation")


@dataclass
class AnalysisOutcome:
    summary: str | None = None
    structured_data: dict[str, Any] | None = None
    success_evaluation: Any = None
    skipped_reason: str | None = None
    #: part name (summary, structuredData, successEvaluation) -> what went wrong
    errors: dict[str, str] = field(default_factory=dict)
    usage: TokenUsage = field(default_factory=TokenUsage)

    def analysis(self) -> dict[str, Any]:
        """The ``analysis`` object: structured fields on top, Vapi's keys beside them."""
        result: dict[str, Any] = {}
        if self.structured_data:
            result.update({k: v for k, v in self.structured_data.items() if k not in _VAPI_KEYS})
            result["structuredData"] = self.structured_data
        if self.summary is not None:
            result["summary"] = self.summary
        if self.success_evaluation is not None:
            result["successEvaluation"] = self.success_evaluation
        return result


class _Usage:
    def __init__(self) -> None:
        self.prompt = self.completion = 0

    def add(self, usage: TokenUsage) -> None:
        self.prompt += usage.prompt_tokens
        self.completion += usage.completion_tokens

    def total(self) -> TokenUsage:
        return TokenUsage(self.prompt, self.completion)


async def _complete(
    llm: LanguageModel, messages: Sequence[ChatMessage], *, json_mode: bool, usage: _Usage
) -> str:
    """The whole answer of one request; retryable vendor errors are retried."""
    for attempt in range(len(RETRY_DELAYS) + 1):
        try:
            parts: list[str] = []
            async for event in llm.stream(messages, temperature=0, json_mode=json_mode):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Completion):
                    usage.add(event.usage)
            return "".join(parts).strip()
        except ProviderError as exc:
            if not exc.retryable or attempt == len(RETRY_DELAYS):
                raise
            await asyncio.sleep(RETRY_DELAYS[attempt])
    raise AssertionError("unreachable")


def _parse_json(text: str) -> Any:
    """JSON from a model answer, tolerating a Markdown code fence around it."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else stripped
    return json.loads(stripped)


def _problems(value: Any, schema: Mapping[str, Any]) -> list[str]:
    validator = Draft202012Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ][:10]


async def _json_answer(
    llm: LanguageModel,
    messages: list[ChatMessage],
    schema: Mapping[str, Any],
    usage: _Usage,
) -> tuple[Any, str | None]:
    """A JSON answer valid for ``schema``: (value, None) or (None, why it failed)."""
    answer = await _complete(llm, messages, json_mode=True, usage=usage)
    for repair in (True, False):
        try:
            value = _parse_json(answer)
            problems = _problems(value, schema)
        except ValueError as exc:
            value, problems = None, [f"not valid JSON: {exc}"]
        if not problems:
            return value, None
        if not repair:
            return None, "; ".join(problems)
        messages = [
            *messages,
            ChatMessage(role="assistant", content=answer),
            ChatMessage(
                role="user",
                content=(
                    "That answer does not validate:\n- "
                    + "\n- ".join(problems)
                    + "\nReply with the corrected JSON object only."
                ),
            ),
        ]
        answer = await _complete(llm, messages, json_mode=True, usage=usage)
    raise AssertionError("unreachable")


def _messages(
    custom: Sequence[Any], default: tuple[str, str], values: Mapping[str, str]
) -> list[ChatMessage]:
    pairs = [(m.role, m.content) for m in custom] or [("system", default[0]), ("user", default[1])]
    return [ChatMessage(role=role, content=substitute(content, values)) for role, content in pairs]


def _plan(plan: Mapping[str, Any] | AnalysisPlan | None) -> AnalysisPlan | None:
    if plan is None or isinstance(plan, AnalysisPlan):
        return plan
    return AnalysisPlan.model_validate(dict(plan))


async def analyze_call(
    plan: Mapping[str, Any] | AnalysisPlan | None,
    *,
    messages: Sequence[Mapping[str, Any]],
    ended_reason: str | None,
    llm: LanguageModel,
    system_prompt: str | None = None,
) -> AnalysisOutcome:
    parsed = _plan(plan)
    if ended_reason == "voicemail":
        left = last_assistant_text(messages)
        summary = f"Voicemail detected. Left message: {left}" if left else "Voicemail detected."
        return AnalysisOutcome(summary=summary)
    threshold = parsed.min_messages_threshold if parsed else None
    spoken = conversation_length(messages)
    if threshold is not None and spoken < threshold:
        return AnalysisOutcome(
            skipped_reason=f"{spoken} messages, below minMessagesThreshold {threshold}"
        )
    if system_prompt is None:
        system_prompt = next(
            (str(m.get("content", "")) for m in messages if m.get("role") == "system"), ""
        )
    values = {
        "transcript": transcript_text(messages),
        "endedReason": ended_reason or "unknown",
        "ended_reason": ended_reason or "unknown",
        "systemPrompt": system_prompt,
    }
    usage = _Usage()
    outcome = AnalysisOutcome()

    summary_plan = parsed.summary_plan if parsed else None
    if summary_plan is None or summary_plan.enabled:
        prompt = _messages(
            summary_plan.messages if summary_plan else [], (SUMMARY_SYSTEM, SUMMARY_USER), values
        )
        try:
            outcome.summary = await _complete(llm, prompt, json_mode=False, usage=usage) or None
        except ProviderError as exc:
            outcome.errors["summary"] = f"{exc.provider}: {exc.message}"

    data_plan = parsed.structured_data_plan if parsed else None
    if data_plan is not None and data_plan.enabled:
        schema = data_plan.schema_ or {"type": "object"}
        schema_values = {**values, "schema": json.dumps(schema, indent=2)}
        prompt = _messages(data_plan.messages, (STRUCTURED_SYSTEM, STRUCTURED_USER), schema_values)
        try:
            data, problem = await _json_answer(llm, prompt, schema, usage)
        except ProviderError as exc:
            data, problem = None, f"{exc.provider}: {exc.message}"
        if problem:
            outcome.errors["structuredData"] = problem
        elif isinstance(data, dict):
            outcome.structured_data = data
        else:
            outcome.structured_data = {"value": data}

    success_plan = parsed.success_evaluation_plan if parsed else None
    if success_plan is not None and success_plan.enabled:
        rubric = success_plan.rubric or "PassFail"
        description, result_schema = RUBRICS[rubric]
        rubric_values = {**values, "rubric": f"{rubric}: {description}"}
        prompt = _messages(success_plan.messages, (SUCCESS_SYSTEM, SUCCESS_USER), rubric_values)
        if success_plan.messages:  # a custom prompt: still ask for the rubric's answer shape
            prompt.append(
                ChatMessage(
                    role="system",
                    content='Answer with one JSON object {"result": <value>}, value = '
                    + description,
                )
            )
        wrapper = {
            "type": "object",
            "properties": {"result": result_schema},
            "required": ["result"],
        }
        try:
            answer, problem = await _json_answer(llm, prompt, wrapper, usage)
        except ProviderError as exc:
            answer, problem = None, f"{exc.provider}: {exc.message}"
        if problem:
            outcome.errors["successEvaluation"] = problem
        else:
            outcome.success_evaluation = answer["result"]

    outcome.usage = usage.total()
    return outcome
