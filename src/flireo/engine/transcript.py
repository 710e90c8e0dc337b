"""The conversation as recorded: the LLM's history and the call's messages.

Two views of one sequence of events:

- :meth:`Transcript.history` — :class:`ChatMessage` objects the LLM is sent
  (prompt, caller turns, what the agent actually said, tool calls and results,
  injected context);
- :meth:`Transcript.messages` — the call record (Vapi/Flireo shape)::

    {"role": "user", "content": "...", "time": <epoch ms>, "endTime": ...,
     "secondsFromStart": 1.24, "duration": <ms>}
    {"role": "assistant", "content": "...", "interrupted": true, ...}
    {"role": "assistant", "content": null, "tool_calls": [{"id", "type": "function",
     "function": {"name", "arguments": "<json>"}}], ...}
    {"role": "tool", "tool_call_id": "...", "name": "...", "content": "...", ...}

Things said that the LLM must not see in between (fillers, said while a tool
runs) go to the record only, so the history stays valid for the vendor (a
tool result must follow its call).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from flireo.clock import Clock
from flireo.providers.llm.base import ChatMessage, ToolCall

Role = Literal["system", "user", "assistant", "tool"]
MessageListener = Callable[[dict[str, Any]], None]

_LABELS = {"assistant": "AI", "user": "User"}


class Transcript:
    def __init__(
        self,
        clock: Clock,
        *,
        started_at: float,
        started_wall: datetime,
        on_message: MessageListener | None = None,
    ) -> None:
        self._clock = clock
        self._t0 = started_at
        self._wall0 = started_wall
        self._on_message = on_message
        self._history: list[ChatMessage] = []
        self._messages: list[dict[str, Any]] = []
        self._open_calls: dict[str, str] = {}  # tool call id → name, awaiting a result

    # --- recording ------------------------------------------------------------------
    def prompt(self, role: Literal["system", "user", "assistant"], content: str) -> None:
        """A configured prompt message (start of the call)."""
        self._history.append(ChatMessage(role=role, content=content))
        record = {"role": role, "content": content, "source": "prompt"}
        self._record(record, self._clock.monotonic(), None)

    def system(self, content: str, *, source: str | None = None) -> None:
        """Context added during the call (control ``inject-context``, silence checks)."""
        self._history.append(ChatMessage(role="system", content=content))
        extra = {"source": source} if source else {}
        self._record({"role": "system", "content": content, **extra}, self._clock.monotonic())

    def user(self, content: str, *, start: float | None = None, end: float | None = None) -> None:
        self._history.append(ChatMessage(role="user", content=content))
        now = self._clock.monotonic()
        self._record(
            {"role": "user", "content": content},
            now if start is None else start,
            now if end is None else end,
        )

    def assistant(
        self,
        content: str,
        *,
        start: float | None = None,
        end: float | None = None,
        interrupted: bool = False,
        tool_calls: list[ToolCall] | None = None,
        in_history: bool = True,
        source: str | None = None,
    ) -> None:
        """What the agent said (``content`` = what the caller heard) and/or its tool calls."""
        calls = list(tool_calls or [])
        if not content and not calls:
            return
        if in_history:
            self._history.append(
                ChatMessage(role="assistant", content=content or None, tool_calls=calls)
            )
        now = self._clock.monotonic()
        record: dict[str, Any] = {"role": "assistant", "content": content or None}
        if calls:
            record["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in calls
            ]
            for call in calls:
                self._open_calls[call.id] = call.name
        if interrupted:
            record["interrupted"] = True
        if source:
            record["source"] = source
        if not content:
            self._record(record, now if start is None else start)
        else:
            self._record(record, now if start is None else start, now if end is None else end)

    def tool_result(self, call_id: str, name: str, content: str) -> None:
        self._open_calls.pop(call_id, None)
        self._history.append(
            ChatMessage(role="tool", content=content, tool_call_id=call_id, name=name)
        )
        record = {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}
        self._record(record, self._clock.monotonic())

    def close_open_calls(self, content: str) -> None:
        """Answer tool calls left without a result (the turn was interrupted)."""
        for call_id, name in list(self._open_calls.items()):
            self.tool_result(call_id, name, content)

    # --- views ----------------------------------------------------------------------
    def history(self) -> list[ChatMessage]:
        return list(self._history)

    def messages(self) -> list[dict[str, Any]]:
        return [dict(m) for m in self._messages]

    def text(self) -> str:
        """``"AI: ...\\nUser: ..."``: what was said, in order."""
        lines = []
        for message in self._messages:
            label = _LABELS.get(message["role"])
            if label and message.get("content") and message.get("source") != "prompt":
                lines.append(f"{label}: {message['content']}")
        return "\n".join(lines)

    def seconds_from_start(self, at: float) -> float:
        return round(max(0.0, at - self._t0), 3)

    def wall(self, at: float) -> datetime:
        return self._wall0 + timedelta(seconds=max(0.0, at - self._t0))

    def note(self, content: str, *, source: str, **fields: Any) -> None:
        """Something that happened on the call (a transfer's outcome): recorded in the
        call's messages, never sent to the LLM."""
        record: dict[str, Any] = {"role": "system", "content": content, "source": source}
        record.update(fields)
        self._record(record, self._clock.monotonic())

    def _record(self, record: dict[str, Any], start: float, end: float | None = None) -> None:
        record["time"] = _epoch_ms(self.wall(start))
        if end is not None:
            record["endTime"] = _epoch_ms(self.wall(end))
            record["duration"] = round(max(0.0, end - start) * 1000)
        record["secondsFromStart"] = self.seconds_from_start(start)
        self._messages.append(record)
        if self._on_message is not None:
            self._on_message(dict(record))


def _epoch_ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)
