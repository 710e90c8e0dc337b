"""Checking a finished call against a scenario's expectations.

What the agent said and did comes from the call record (``GET /calls/{id}``:
``messages`` with its tool calls and ``transfer-update`` notes, ``metrics.turns``
for latency) when the API is configured, and from what the softphone heard.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from flireo.softphone import CallResult
from flireo.testing.llm import LlmError, judge
from flireo.testing.suite import (
    AgentHangsUp,
    AgentSays,
    Expectation,
    Latency,
    LlmEndpoint,
    ToolCalled,
    TransferAttempted,
)

__all__ = ["CallEvidence", "Check", "check_all"]


@dataclass
class Check:
    """One expectation's result."""

    name: str
    passed: bool
    detail: str


@dataclass
class CallEvidence:
    result: CallResult
    #: ``GET /calls/{id}``'s ``call`` (None without the API or when not found)
    record: dict[str, Any] | None

    def agent_lines(self, source: str) -> list[str]:
        if source == "record" and self.record is not None:
            return [
                str(m["content"])
                for m in self.record.get("messages") or []
                if m.get("role") == "assistant" and m.get("content")
            ]
        return self.result.said("agent")

    def transcript(self) -> str:
        """The conversation, for the judge: the record's when there is one."""
        if self.record is not None and self.record.get("messages"):
            rows = []
            for m in self.record["messages"]:
                role = {"assistant": "AGENT", "user": "CALLER"}.get(m.get("role", ""))
                if role and m.get("content"):
                    rows.append(f"{role}: {m['content']}")
            return "\n".join(rows)
        return "\n".join(
            f"{'AGENT' if line.speaker == 'agent' else 'CALLER'}: {line.text}"
            for line in self.result.transcript
        )

    def tool_calls(self) -> list[tuple[str, Any]]:
        out = []
        for m in (self.record or {}).get("messages") or []:
            for call in m.get("tool_calls") or []:
                function = call.get("function") or {}
                raw = function.get("arguments")
                try:
                    arguments = json.loads(raw) if isinstance(raw, str) else raw
                except ValueError:
                    arguments = raw
                out.append((str(function.get("name")), arguments))
        return out


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _quote(lines: list[str], limit: int = 160) -> str:
    joined = " | ".join(lines)
    return repr(joined if len(joined) <= limit else joined[: limit - 1] + "…")


async def check_says(
    e: AgentSays, ev: CallEvidence, http: httpx.AsyncClient, endpoint: LlmEndpoint | None
) -> Check:
    source = e.source or ("record" if ev.record is not None else "heard")
    if source == "record" and ev.record is None:
        return Check("agent_says", False, "no call record to read (give --api-url and a key)")
    lines = ev.agent_lines(source)
    if e.judge is not None:
        assert endpoint is not None  # the suite's validation ensures it
        try:
            passed, reason = await judge(http, endpoint, e.judge, ev.transcript())
        except LlmError as exc:
            return Check(f"agent_says judge {e.judge!r}", False, f"judge failed: {exc}")
        return Check(f"agent_says judge {e.judge!r}", passed, reason)
    if e.contains is not None:
        name = f"agent_says contains {e.contains!r}"
        wanted = _normal(e.contains)
        hit = next((line for line in lines if wanted in _normal(line)), None)
    else:
        assert e.regex is not None
        name = f"agent_says regex {e.regex!r}"
        pattern = re.compile(e.regex, re.IGNORECASE)
        hit = next((line for line in lines if pattern.search(line)), None)
    if e.never:
        name = name.replace("agent_says", "agent_says never", 1)
        if hit is None:
            return Check(name, True, f"not said ({source})")
        return Check(name, False, f"said {hit!r} ({source})")
    if hit is not None:
        return Check(name, True, f"{hit!r} ({source})")
    return Check(name, False, f"agent said ({source}): {_quote(lines) if lines else 'nothing'}")


def check_tool(e: ToolCalled, ev: CallEvidence) -> Check:
    name = f"tool_called {e.name}" + (f" {json.dumps(e.arguments)}" if e.arguments else "")
    if ev.record is None:
        return Check(name, False, "no call record to read (give --api-url and a key)")
    calls = ev.tool_calls()
    same_name = [args for tool, args in calls if tool == e.name]
    for args in same_name:
        if not e.arguments or (
            isinstance(args, dict) and all(args.get(k) == v for k, v in e.arguments.items())
        ):
            return Check(name, True, f"called with {json.dumps(args)}")
    if same_name:
        shown = ", ".join(json.dumps(a) for a in same_name)
        return Check(name, False, f"called with {shown}")
    made = ", ".join(sorted({tool for tool, _ in calls})) or "none"
    return Check(name, False, f"not called (tool calls: {made})")


def check_transfer(e: TransferAttempted, ev: CallEvidence) -> Check:
    name = "transfer_attempted" + (f" {e.destination}" if e.destination else "")
    if ev.record is None:
        return Check(name, False, "no call record to read (give --api-url and a key)")
    tried = [
        m["transfer"]
        for m in ev.record.get("messages") or []
        if m.get("source") == "transfer-update" and isinstance(m.get("transfer"), dict)
    ]
    for t in tried:
        if e.destination is None or t.get("destination") == e.destination:
            return Check(name, True, f"to {t.get('destination')}: {t.get('status')}")
    if tried:
        return Check(name, False, "tried " + ", ".join(str(t.get("destination")) for t in tried))
    return Check(name, False, "no transfer attempted")


def check_hangup(e: AgentHangsUp, ev: CallEvidence) -> Check:
    name = f"agent_hangs_up within {e.within_s:g} s"
    r = ev.result
    if r.hung_up_by != "agent":
        return Check(name, False, f"the caller hung up after {r.duration_s:.1f} s")
    if r.duration_s > e.within_s:
        return Check(name, False, f"the agent hung up after {r.duration_s:.1f} s")
    return Check(name, True, f"after {r.duration_s:.1f} s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def check_latency(e: Latency, ev: CallEvidence) -> Check:
    bounds = [
        f"{label} ≤ {value:g} ms"
        for label, value in (("max", e.max_ms), ("p50", e.p50_ms), ("p95", e.p95_ms))
        if value is not None
    ]
    name = f"latency {e.metric} " + ", ".join(bounds)
    if ev.record is None:
        return Check(name, False, "no call record to read (give --api-url and a key)")
    turns = ((ev.record.get("metrics") or {}).get("turns")) or []
    values = [
        float(t[e.metric])
        for t in turns
        if t.get("trigger") in ("user", "dtmf") and t.get(e.metric) is not None
    ]
    if not values:
        return Check(name, False, "no caller turn with that metric in the call record")
    measured = {"max": max(values), "p50": _percentile(values, 50), "p95": _percentile(values, 95)}
    shown = (
        f"{len(values)} turns: p50 {measured['p50']:.0f}, p95 {measured['p95']:.0f}, "
        f"max {measured['max']:.0f} ms"
    )
    over = [
        label
        for label, bound in (("max", e.max_ms), ("p50", e.p50_ms), ("p95", e.p95_ms))
        if bound is not None and measured[label] > bound
    ]
    if over:
        return Check(name, False, f"{', '.join(over)} over the bound ({shown})")
    return Check(name, True, shown)


async def check_all(
    expectations: list[Expectation],
    ev: CallEvidence,
    http: httpx.AsyncClient,
    judge_endpoint: LlmEndpoint | None,
) -> list[Check]:
    checks = []
    for e in expectations:
        if e.agent_says is not None:
            checks.append(await check_says(e.agent_says, ev, http, judge_endpoint))
        elif e.tool_called is not None:
            checks.append(check_tool(e.tool_called, ev))
        elif e.transfer_attempted is not None:
            checks.append(check_transfer(e.transfer_attempted, ev))
        elif e.agent_hangs_up is not None:
            checks.append(check_hangup(e.agent_hangs_up, ev))
        elif e.latency is not None:
            checks.append(check_latency(e.latency, ev))
    return checks
