"""Default prompts and the answer schema of each success rubric (Vapi semantics)."""

from __future__ import annotations

from typing import Any

SUMMARY_SYSTEM = (
    "You are an expert note-taker. You will be given the transcript of a phone call "
    "between an AI agent and a caller. Summarize the call in 2-3 sentences, in the "
    "language of the call. Mention what the caller wanted and how it ended."
)
SUMMARY_USER = (
    "Here is the transcript:\n\n{{transcript}}\n\nThe call ended because: {{endedReason}}"
)

STRUCTURED_SYSTEM = (
    "You are an expert data extractor. You will be given the transcript of a phone call. "
    "Extract the data described by this JSON Schema and answer with one JSON object that "
    "validates against it, nothing else.\n\nJSON Schema:\n{{schema}}"
)
STRUCTURED_USER = (
    "Here is the transcript:\n\n{{transcript}}\n\nThe call ended because: {{endedReason}}"
)

SUCCESS_SYSTEM = (
    "You are an expert call evaluator. You will be given the transcript of a phone call and "
    "the instructions the AI agent followed. Decide how successful the call was for the "
    "agent's goals using this rubric:\n\n{{rubric}}\n\nAnswer with one JSON object of the "
    'form {"result": <value>} where <value> follows the rubric exactly.'
)
SUCCESS_USER = (
    "The agent's instructions:\n{{systemPrompt}}\n\nThe transcript:\n\n{{transcript}}\n\n"
    "The call ended because: {{endedReason}}"
)

_LIKERT = ["Strongly Agree", "Agree", "Neutral", "Disagree", "Strongly Disagree"]
_CRITERIA = {"type": "object", "additionalProperties": True, "minProperties": 1}

#: rubric -> (description for the prompt, JSON Schema of ``result``)
RUBRICS: dict[str, tuple[str, dict[str, Any]]] = {
    "PassFail": ("true if the call reached its goal, false if not.", {"type": "boolean"}),
    "NumericScale": (
        "an integer from 1 (failed) to 10 (perfect).",
        {"type": "integer", "minimum": 1, "maximum": 10},
    ),
    "PercentageScale": (
        "a number from 0 to 100: the percentage of the goal reached.",
        {"type": "number", "minimum": 0, "maximum": 100},
    ),
    "DescriptiveScale": (
        'one of "Excellent", "Good", "Fair", "Poor".',
        {"enum": ["Excellent", "Good", "Fair", "Poor"]},
    ),
    "LikertScale": (
        'how much you agree that the call was successful: one of "' + '", "'.join(_LIKERT) + '".',
        {"enum": _LIKERT},
    ),
    "Checklist": (
        "an object mapping each goal from the instructions to true (met) or false (not met).",
        {"type": "object", "additionalProperties": {"type": "boolean"}, "minProperties": 1},
    ),
    "Matrix": (
        'an object mapping each criterion to one of "Excellent", "Good", "Fair", "Poor".',
        {
            "type": "object",
            "additionalProperties": {"enum": ["Excellent", "Good", "Fair", "Poor"]},
            "minProperties": 1,
        },
    ),
    "AutomaticRubric": (
        "an object mapping criteria you choose to a score from 1 to 10 each.",
        _CRITERIA,
    ),
}
