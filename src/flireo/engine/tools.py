"""Tools the LLM may call, and running the webhook-backed ones.

- Function tools (``llm_config.tools``): synchronous ones POST the signed
  ``tool-calls`` webhook to the tool's ``url`` (else the agent's webhook URL,
  if ``tool-calls`` is among its events) and wait up to ``tool_timeout_s``
  (10 s); calls of one LLM turn going to the same URL share one request. The
  request is sent once, never retried: a timeout, refusal (SSRF guard),
  connection error or non-2xx answer becomes an error result the LLM sees.
  Asynchronous ones (``async: true``) fire the same webhook without waiting.
- Built-ins: ``endCall``, ``transferCall`` (a ``destination`` chosen from the
  configured ones) and ``sendDtmf`` (``digits``). The pipelines run them with
  the call's actions; this module only describes them to the LLM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import httpx

from flireo.clock import Clock
from flireo.engine.config import (
    END_CALL_TOOL,
    SEND_DTMF_TOOL,
    TRANSFER_CALL_TOOL,
    EndCallTool,
    FunctionTool,
    SendDtmfTool,
    SessionConfig,
    ToolConfig,
    TransferCallTool,
    TransferDestination,
)
from flireo.engine.events import SessionEvent, ToolCallFinished, ToolCallStarted
from flireo.engine.tool_webhook import (
    EVENT_TYPE,
    ToolResult,
    error_result,
    parse_tool_reply,
    tool_calls_payload,
)
from flireo.providers.llm.base import ToolCall, ToolSpec
from flireo.webhooks.sync import post_sync_webhook

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
ASYNC_SENT = "The request was sent; its result comes later, outside this conversation."


def tool_spec(tool: ToolConfig) -> ToolSpec:
    """How the LLM sees one configured tool."""
    if isinstance(tool, FunctionTool):
        return ToolSpec(tool.name, tool.description, dict(tool.parameters))
    if isinstance(tool, EndCallTool):
        return ToolSpec(
            END_CALL_TOOL,
            tool.description
            or "Hang up the call. Use it only when the conversation is over, after saying goodbye.",
            {"type": "object", "properties": {}},
        )
    if isinstance(tool, TransferCallTool):
        choices = "; ".join(
            f"{d.target}: {d.description or 'no description'}" for d in tool.destinations
        )
        return ToolSpec(
            TRANSFER_CALL_TOOL,
            (tool.description or "Transfer the caller to a person or department.")
            + f" Destinations: {choices}",
            {
                "type": "object",
                "properties": {
                    "destination": {
                        "type": "string",
                        "enum": [d.target for d in tool.destinations],
                        "description": "Where to transfer the caller",
                    }
                },
                "required": ["destination"],
            },
        )
    return ToolSpec(
        SEND_DTMF_TOOL,
        tool.description or "Press keys on the phone keypad (for menus of automated systems).",
        {
            "type": "object",
            "properties": {
                "digits": {
                    "type": "string",
                    "pattern": "^[0-9*#A-D]+$",
                    "description": "Keys to press in order, e.g. '1' or '1234#'",
                }
            },
            "required": ["digits"],
        },
    )


class ToolRunner:
    def __init__(
        self,
        config: SessionConfig,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        allow_private_urls: bool,
        emit: Callable[[SessionEvent], None],
        spawn: Spawn,
        realtime: bool = False,
    ) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._allow_private = allow_private_urls
        self._emit = emit
        self._spawn = spawn
        self._realtime = realtime
        tools = config.effective_tools
        self.specs: list[ToolSpec] = [tool_spec(t) for t in tools]
        self._functions = {t.name: t for t in tools if isinstance(t, FunctionTool)}
        self._builtins: dict[str, ToolConfig] = {}
        for tool in tools:
            if isinstance(tool, EndCallTool):
                self._builtins[END_CALL_TOOL] = tool
            elif isinstance(tool, TransferCallTool):
                self._builtins[TRANSFER_CALL_TOOL] = tool
            elif isinstance(tool, SendDtmfTool):
                self._builtins[SEND_DTMF_TOOL] = tool

    def function(self, name: str) -> FunctionTool | None:
        return self._functions.get(name)

    def builtin(self, name: str) -> ToolConfig | None:
        return self._builtins.get(name)

    def destination(self, target: str) -> TransferDestination | None:
        tool = self._builtins.get(TRANSFER_CALL_TOOL)
        if not isinstance(tool, TransferCallTool):
            return None
        return next((d for d in tool.destinations if d.target == target), None)

    def started(self, call: ToolCall, kind: str) -> float:
        self._emit(ToolCallStarted(call.id, call.name, dict(call.arguments), kind))
        return self._clock.monotonic()

    def finished(self, result: ToolResult, since: float) -> None:
        seconds = round(self._clock.monotonic() - since, 3)
        self._emit(
            ToolCallFinished(result.call_id, result.name, result.content, result.error, seconds)
        )

    def _target(self, tool: FunctionTool) -> str | None:
        if tool.url:
            return tool.url
        webhook = self._config.webhook
        if webhook.url and webhook.sends(EVENT_TYPE):
            return webhook.url
        return None

    async def run_sync(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Run synchronous function calls (in parallel per URL); results in call order."""
        results: dict[str, ToolResult] = {}
        groups: dict[str, list[ToolCall]] = {}
        for call in calls:
            tool = self._functions.get(call.name)
            url = self._target(tool) if tool is not None else None
            if tool is None:
                results[call.id] = error_result(call, f"unknown tool {call.name!r}")
            elif url is None:
                results[call.id] = error_result(call, "no webhook URL is configured for tools")
            else:
                groups.setdefault(url, []).append(call)
        since = {c.id: self.started(c, "function") for c in calls}
        if groups:
            batches = await asyncio.gather(
                *(self._post(url, group) for url, group in groups.items())
            )
            for batch in batches:
                for result in batch:
                    results[result.call_id] = result
        ordered = [results[c.id] for c in calls]
        for result in ordered:
            self.finished(result, since[result.call_id])
        return ordered

    def fire_async(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Send asynchronous function calls without waiting; the LLM is told they were sent."""
        out: list[ToolResult] = []
        groups: dict[str, list[ToolCall]] = {}
        for call in calls:
            tool = self._functions.get(call.name)
            url = self._target(tool) if tool is not None else None
            self.started(call, "async-function")
            if url is None:
                out.append(error_result(call, "no webhook URL is configured for tools"))
                continue
            groups.setdefault(url, []).append(call)
            out.append(ToolResult(call.id, call.name, ASYNC_SENT))
        for url, group in groups.items():
            self._spawn(self._post_async(url, group))
        return out

    async def _post_async(self, url: str, calls: list[ToolCall]) -> None:
        since = self._clock.monotonic()
        for result in await self._post(url, calls):
            self.finished(result, since)

    async def _post(self, url: str, calls: list[ToolCall]) -> list[ToolResult]:
        payload = tool_calls_payload(
            self._config.call, calls, now=self._clock.now(), realtime=self._realtime
        )
        timeout = self._config.tool_timeout_s
        try:
            async with asyncio.timeout(timeout + 0.5):
                reply = await post_sync_webhook(
                    self._http,
                    url=url,
                    event_type=EVENT_TYPE,
                    payload=payload,
                    secret=self._config.webhook.secret,
                    deadline_seconds=timeout,
                    allow_private=self._allow_private,
                    now=self._clock.now().timestamp(),
                )
        except TimeoutError:
            return [error_result(c, f"no answer within {timeout:g} s") for c in calls]
        if not reply.ok:
            message = f"the tool server failed: {reply.error}"
            log.info("tool webhook %s failed: %s", url, reply.error)
            return [error_result(c, message) for c in calls]
        return parse_tool_reply(reply.body, calls)
