"""A minimal OpenAI-compatible chat-completions client (judge and caller persona)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from flireo.testing.suite import LlmEndpoint

__all__ = ["LlmError", "chat", "judge"]


class LlmError(Exception):
    pass


async def chat(
    http: httpx.AsyncClient,
    endpoint: LlmEndpoint,
    messages: list[dict[str, str]],
    *,
    json_mode: bool = False,
) -> str:
    """The assistant text of one non-streaming completion."""
    headers = {}
    key = endpoint.key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body: dict[str, Any] = {"model": endpoint.model, "messages": messages, "temperature": 0}
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    try:
        r = await http.post(url, json=body, headers=headers, timeout=endpoint.timeout_s)
    except httpx.HTTPError as exc:
        raise LlmError(f"cannot reach {url}: {exc}") from exc
    if r.status_code != 200:
        raise LlmError(f"{url} answered {r.status_code}: {r.text[:300]}")
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LlmError(f"{url}: not a chat completion: {r.text[:300]}") from exc
    return str(content or "")


JUDGE_PROMPT = (
    "You judge a phone call between a voice agent and a caller against a rubric. "
    "Read the transcript and decide whether the AGENT meets the rubric. Answer with a "
    'JSON object only: {"pass": true or false, "reason": "one short sentence"}.'
)


async def judge(
    http: httpx.AsyncClient, endpoint: LlmEndpoint, rubric: str, transcript: str
) -> tuple[bool, str]:
    """(passed, reason) from the judge model."""
    text = await chat(
        http,
        endpoint,
        [
            {"role": "system", "content": JUDGE_PROMPT},
            {"role": "user", "content": f"Rubric:\n{rubric}\n\nTranscript:\n{transcript}"},
        ],
        json_mode=True,
    )
    start, end = text.find("{"), text.rfind("}")
    try:
        verdict = json.loads(text[start : end + 1]) if start >= 0 else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("pass"), bool):
        raise LlmError(f'the judge did not answer {{"pass": ..., "reason": ...}}: {text[:200]!r}')
    return verdict["pass"], str(verdict.get("reason") or "")
