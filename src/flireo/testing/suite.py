"""The ``flireo test`` suite file: YAML validated by Pydantic models.

A bad suite is reported as ``file:line: field.path: message`` (the line from
the YAML node the error points at), never as a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "AgentSays",
    "AgentSetup",
    "Expectation",
    "LlmEndpoint",
    "Noise",
    "Persona",
    "Scenario",
    "Step",
    "Suite",
    "SuiteError",
    "load_suite",
]

_DIGITS = re.compile(r"[0-9A-Da-d*#]+")


class SuiteError(Exception):
    """The suite file cannot be used; the message names the file, line and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LlmEndpoint(_Model):
    """Any OpenAI-compatible chat-completions endpoint (judge, caller persona)."""

    base_url: str = Field(min_length=1)
    model: str = Field(min_length=1)
    #: the key itself, or (better in CI) the name of the env var holding it
    api_key: str | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)

    def key(self) -> str | None:
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return self.api_key


class AgentSetup(_Model):
    """An agent to create through the API before the scenarios run (and delete after)."""

    #: the ``POST /agents`` body
    definition: dict[str, Any]
    #: the number it answers (registered with ``POST /numbers``)
    phone_number: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    #: ``POST /sip-trunks`` body for the number's trunk (transfers to phone numbers)
    sip_trunk: dict[str, Any] | None = None
    #: ``POST /byok`` bodies, e.g. ``{provider: openai, api_key_env: OPENAI_API_KEY}``
    byok: list[dict[str, Any]] = Field(default_factory=list)


class Noise(_Model):
    """Background noise under everything the caller sends."""

    color: Literal["pink", "brown", "white"] = "pink"
    #: speech-to-noise ratio in dB (the caller's speech level over the noise's)
    snr_db: float = Field(default=15.0, ge=-10, le=60)


class Step(_Model):
    """One thing the caller does; exactly one of say/wav/backchannel/interrupt/dtmf/pause/hangup."""

    say: str | None = Field(default=None, min_length=1)
    wav: Path | None = None
    #: said while the agent talks ("mm-hmm"): the agent should keep going
    backchannel: str | None = Field(default=None, min_length=1)
    #: said while the agent talks ("wait, stop"): the agent should stop and listen
    interrupt: str | None = Field(default=None, min_length=1)
    dtmf: str | None = None
    pause: float | None = Field(default=None, ge=0, le=600)
    hangup: bool | None = None
    #: before the step: ``agent`` = until the agent has spoken and gone quiet,
    #: ``none`` = at once. Default: ``agent`` for say/wav/dtmf; backchannels and
    #: interruptions wait for the agent to start speaking instead.
    wait: Literal["agent", "none"] | None = None
    #: extra seconds before the step (after ``wait``; for backchannel/interrupt:
    #: after the agent started speaking, default 0.5)
    delay_s: float | None = Field(default=None, ge=0, le=600)

    @field_validator("dtmf")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is not None and not _DIGITS.fullmatch(value):
            raise ValueError("DTMF digits are 0-9, *, #, A-D")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [name for name in _ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step has exactly one of {', '.join(_ACTIONS)}"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def action(self) -> str:
        return next(name for name in _ACTIONS if getattr(self, name) is not None)


_ACTIONS = ("say", "wav", "backchannel", "interrupt", "dtmf", "pause", "hangup")


class Persona(_Model):
    """An LLM plays the caller: it reads what the agent said and answers as the persona."""

    prompt: str = Field(min_length=1)
    #: the caller's first line (default: the persona's LLM opens too)
    opening: str | None = None
    max_turns: int = Field(default=4, ge=1, le=50)
    #: the LLM ends the call by answering this token
    end_token: str = "[END]"


class AgentSays(_Model):
    contains: str | None = Field(default=None, min_length=1)
    regex: str | None = Field(default=None, min_length=1)
    #: a rubric for the LLM judge (the suite's ``judge`` endpoint)
    judge: str | None = Field(default=None, min_length=1)
    #: ``record``: the agent's words in the call record (exact text; needs the API);
    #: ``heard``: what local Whisper heard on the line. Default: record when the API
    #: is configured, else heard.
    source: Literal["record", "heard"] | None = None
    #: invert: the agent must NOT say it (contains/regex)
    never: bool = False

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one(self) -> AgentSays:
        given = [n for n in ("contains", "regex", "judge") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("agent_says has exactly one of contains, regex, judge")
        if self.never and self.judge is not None:
            raise ValueError("never applies to contains and regex, not to judge")
        return self


class ToolCalled(_Model):
    name: str = Field(min_length=1)
    #: each given argument must equal the call's (others may be present too)
    arguments: dict[str, Any] | None = None


class TransferAttempted(_Model):
    #: the destination the agent tried (E.164 or SIP URI); any when omitted
    destination: str | None = None


class AgentHangsUp(_Model):
    #: the agent's BYE came within this many seconds of the answer
    within_s: float = Field(gt=0, le=3600)


class Latency(_Model):
    """Bounds on the agent's response time per caller turn (``first_audio_ms`` of the
    call's per-turn metrics: end of the caller's turn to the agent's first audio)."""

    metric: Literal["first_audio_ms", "stt_ms", "llm_first_token_ms", "tts_first_byte_ms"] = (
        "first_audio_ms"
    )
    max_ms: float | None = Field(default=None, gt=0)
    p50_ms: float | None = Field(default=None, gt=0)
    p95_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _a_bound(self) -> Latency:
        if self.max_ms is None and self.p50_ms is None and self.p95_ms is None:
            raise ValueError("latency needs at least one of max_ms, p50_ms, p95_ms")
        return self


class Expectation(_Model):
    """One check on the finished call; exactly one key."""

    agent_says: AgentSays | None = None
    tool_called: ToolCalled | None = None
    transfer_attempted: TransferAttempted | None = None
    agent_hangs_up: AgentHangsUp | None = None
    latency: Latency | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # ``transfer_attempted: true`` / ``agent_says: "text"`` (= contains)
        if isinstance(data, dict):
            data = dict(data)
            if data.get("transfer_attempted") is True:
                data["transfer_attempted"] = {}
            if isinstance(data.get("agent_says"), str):
                data["agent_says"] = {"contains": data["agent_says"]}
            if isinstance(data.get("tool_called"), str):
                data["tool_called"] = {"name": data["tool_called"]}
        return data

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        given = [n for n in _KINDS if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"an expectation has exactly one of {', '.join(_KINDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(n for n in _KINDS if getattr(self, n) is not None)


_KINDS = ("agent_says", "tool_called", "transfer_attempted", "agent_hangs_up", "latency")


class Scenario(_Model):
    name: str = Field(min_length=1, max_length=200)
    #: whom to call: a number on the server, or an agent id (needs the API);
    #: default: the suite's ``agent``
    call: str | None = None
    #: the caller's number (default: a fresh one per scenario, to find its record)
    caller: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    steps: list[Step] = Field(default_factory=list)
    persona: Persona | None = None
    noise: Noise | None = None
    expect: list[Expectation] = Field(default_factory=list)
    #: the call is hung up after this long whatever the script says
    max_duration_s: float = Field(default=90.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _script(self) -> Scenario:
        if self.steps and self.persona is not None:
            raise ValueError("a scenario has steps or a persona, not both")
        return self


class Suite(_Model):
    name: str = "flireo"
    #: the OpenAI-compatible endpoint for ``agent_says.judge``
    judge: LlmEndpoint | None = None
    #: the OpenAI-compatible endpoint that plays ``persona`` callers
    caller_llm: LlmEndpoint | None = None
    agent: AgentSetup | None = None
    #: settings for every scenario's softphone
    quiet_s: float = Field(default=1.0, gt=0, le=30)
    max_wait_s: float = Field(default=15.0, gt=0, le=600)
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        names = [s.name for s in self.scenarios]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scenario names must be unique: {', '.join(duplicates)}")
        for scenario in self.scenarios:
            if scenario.call is None and self.agent is None:
                raise ValueError(
                    f"scenario {scenario.name!r}: no `call:` target and no suite `agent:`"
                )
            if scenario.persona is not None and self.caller_llm is None:
                raise ValueError(f"scenario {scenario.name!r} has a persona: set `caller_llm:`")
            judged = any(e.agent_says and e.agent_says.judge for e in scenario.expect)
            if judged and self.judge is None:
                raise ValueError(f"scenario {scenario.name!r} uses an LLM judge: set `judge:`")
        return self


# ---- loading ----------------------------------------------------------------------------


def _lines(
    node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]
) -> None:
    """Every key path of the document → its 1-based line."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            out[(*path, name)] = key.start_mark.line + 1
            _lines(value, (*path, name), out)
            out[(*path, name)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line_of(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def parse_suite(text: str, source: str = "<suite>") -> Suite:
    """The suite in ``text``; :class:`SuiteError` with line and field when it is bad."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SuiteError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(
            f"{source}: a suite is a mapping with `scenarios:` (got {type(data).__name__})"
        )
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
            line = _line_of(loc, lines)
            field = ".".join(str(part) for part in loc) or "(suite)"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{source}:{line or '?'}: {field}: {message}")
        raise SuiteError("\n".join(problems)) from None


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or part in ("str", "bool"))


def load_suite(path: Path) -> Suite:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read {path}: {exc}") from None
    suite = parse_suite(text, str(path))
    return _resolve_wavs(suite, path.parent)


def _resolve_wavs(suite: Suite, base: Path) -> Suite:
    """WAV paths relative to the suite file's folder."""
    scenarios = []
    for scenario in suite.scenarios:
        steps = [
            s.model_copy(update={"wav": base / s.wav})
            if s.wav is not None and not s.wav.is_absolute()
            else s
            for s in scenario.steps
        ]
        scenarios.append(scenario.model_copy(update={"steps": steps}))
    return suite.model_copy(update={"scenarios": scenarios})
