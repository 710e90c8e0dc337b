"""The ``tool-calls`` webhook as data (webhooks.md §7): the body we send and the
four reply shapes we accept. Pure functions; :mod:`flireo.engine.tools` sends it.

Replies (any 2xx with a JSON body):

1. ``{"results": [{"toolCallId": "...", "result": <any>}]}`` — one entry per call
   (an entry may carry ``"error"`` instead of ``"result"``);
2. ``{"result": <any>}`` — the result of every call in the request;
3. ``{"error": "..."}`` — every call failed with this message (any object with a
   non-empty ``error`` and no ``result``);
4. any other JSON value — bare data, the result itself.

What the LLM sees: a string result as is; anything else as compact JSON; an
error as ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flireo.domain.common import format_timestamp
from flireo.engine.config import CallInfo
from flireo.providers.llm.base import ToolCall

EVENT_TYPE = "tool-calls"
EMPTY_RESULT = "The tool ran and returned no data."


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    name: str
    #: what the LLM is told (a JSON error object when ``error`` is set)
    content: str
    error: str | None = None


def call_object(call: CallInfo, *, realtime: bool) -> dict[str, Any]:
    return {
        "id": call.call_id,
        "type": call.call_type,
        "status": "in-progress",
        "pipeline": "realtime" if realtime else "standard",
    }


def tool_calls_payload(
    call: CallInfo, calls: Sequence[ToolCall], *, now: datetime, realtime: bool = False
) -> dict[str, Any]:
    """The signed body: common fields plus ``toolCallList`` (arguments as objects)."""
    return {
        "message": {
            "type": EVENT_TYPE,
            "timestamp": format_timestamp(now),
            "call": call_object(call, realtime=realtime),
            "phoneNumber": {"number": call.phone_number, "name": call.phone_number_name},
            "customer": {"number": call.customer_number},
            "toolCallList": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": dict(c.arguments)},
                }
                for c in calls
            ],
        }
    }


def result_text(value: Any) -> str:
    if value is None:
        return EMPTY_RESULT
    if isinstance(value, str):
        return value if value.strip() else EMPTY_RESULT
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def error_result(call: ToolCall, message: str) -> ToolResult:
    return ToolResult(
        call.id,
        call.name,
        json.dumps({"error": message}, ensure_ascii=False),
        error=message,
    )


def _error_message(value: Any) -> str | None:
    if value is None or value is False or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_tool_reply(body: Any, calls: Sequence[ToolCall]) -> list[ToolResult]:
    """One result per call, in order, from whichever reply shape ``body`` has."""
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        by_id: dict[str, dict[str, Any]] = {}
        for entry in body["results"]:
            if isinstance(entry, dict) and isinstance(entry.get("toolCallId"), str):
                by_id.setdefault(entry["toolCallId"], entry)
        out = []
        for call in calls:
            entry = by_id.get(call.id)
            if entry is None and len(calls) == 1 and len(body["results"]) == 1:
                only = body["results"][0]
                entry = only if isinstance(only, dict) else None
            if entry is None:
                out.append(error_result(call, "the tool server sent no result for this call"))
            elif (message := _error_message(entry.get("error"))) is not None:
                out.append(error_result(call, message))
            else:
                out.append(ToolResult(call.id, call.name, result_text(entry.get("result"))))
        return out
    if isinstance(body, dict) and "result" in body:
        return [ToolResult(c.id, c.name, result_text(body["result"])) for c in calls]
    if isinstance(body, dict) and (message := _error_message(body.get("error"))) is not None:
        return [error_result(c, message) for c in calls]
    return [ToolResult(c.id, c.name, result_text(body)) for c in calls]
