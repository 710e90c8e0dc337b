"""Tool definitions inside ``llm_config.tools`` and tool templates (schemas.md §2).

Accepted spellings: Flireo's flat function tool (``name``, ``description``,
``url``, ``async``, ``asyncResponse``/``async_response``, ``parameters``) and
Vapi's nested one (``{"type": "function", "function": {...}, "server": {"url"}}``).
Tools without ``type`` are function tools.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    RootModel,
    field_validator,
    model_validator,
)

from flireo.domain.common import E164, HTTP_URL_PATTERN, OutModel, Timestamp, WireModel


class FunctionTool(WireModel):
    type: Literal["function"] = "function"
    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Function name the LLM calls (letters, digits, _ and -)",
    )
    description: str = Field(min_length=1, max_length=4000)
    url: str | None = Field(default=None, max_length=2048, pattern=HTTP_URL_PATTERN)
    is_async: bool = Field(default=False, alias="async")
    async_response: str | None = Field(
        default=None,
        alias="asyncResponse",
        validation_alias=AliasChoices("asyncResponse", "async_response"),
        max_length=1000,
    )
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @model_validator(mode="before")
    @classmethod
    def _flatten_vapi_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("function"), dict):
            flat = {k: v for k, v in data.items() if k not in ("function", "server", "messages")}
            flat.update(data["function"])
            server = data.get("server")
            if isinstance(server, dict) and "url" in server and "url" not in flat:
                flat["url"] = server["url"]
            return flat
        return data

    @field_validator("parameters")
    @classmethod
    def _schema_ok(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("type", "object") != "object":
            raise ValueError("parameters must be a JSON Schema of type object")
        return v


class EndCallTool(WireModel):
    type: Literal["endCall"]
    description: str | None = Field(default=None, max_length=4000)


class NumberDestination(WireModel):
    type: Literal["number"] = "number"
    number: E164
    description: str | None = Field(default=None, max_length=1000)
    message: str | None = Field(default=None, max_length=1000)

    @property
    def target(self) -> str:
        return self.number


class SipDestination(WireModel):
    type: Literal["sip"]
    sip_uri: str = Field(
        alias="sipUri",
        validation_alias=AliasChoices("sipUri", "sip_uri"),
        pattern=r"^sips?:[!-~]+$",
        max_length=512,
    )
    description: str | None = Field(default=None, max_length=1000)
    message: str | None = Field(default=None, max_length=1000)

    @property
    def target(self) -> str:
        return self.sip_uri


#: ``type`` defaults to ``number``; SIP destinations say ``"type": "sip"``
TransferDestination = NumberDestination | SipDestination


class TransferCallTool(WireModel):
    type: Literal["transferCall"]
    description: str | None = Field(default=None, max_length=4000)
    destinations: list[TransferDestination] = Field(min_length=1, max_length=50)


Tool = Annotated[FunctionTool | EndCallTool | TransferCallTool, Field(discriminator="type")]


def default_tool_type(raw: Any) -> Any:
    """Tools without a ``type`` are function tools."""
    if isinstance(raw, dict) and "type" not in raw:
        return {**raw, "type": "function"}
    return raw


# --- tool templates (resources.md §2) --------------------------------------

ToolType = Literal["function", "endCall", "transferCall"]
_FLAT_KEYS = {"url", "async", "asyncResponse", "async_response", "parameters", "destinations"}


def normalize_template_body(data: Any) -> Any:
    """Accept ``toolType``/``toolConfig`` and the guide's flat shape (``type``,
    ``url``, ``parameters``, ``destinations``... at the top level)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for camel, snake in (("toolType", "tool_type"), ("toolConfig", "tool_config")):
        if camel in data and snake not in data:
            data[snake] = data.pop(camel)
    if "tool_config" in data or not ("type" in data or _FLAT_KEYS & data.keys()):
        return data
    if "tool_type" not in data:
        data["tool_type"] = data.pop("type", "function")
    config = {k: data.pop(k) for k in list(data) if k in _FLAT_KEYS}
    if data["tool_type"] == "function":
        config.setdefault("name", data.get("name"))
        config.setdefault("description", data.get("description") or data.get("name"))
    data["tool_config"] = config
    return data


class EndCallConfig(WireModel):
    description: str | None = Field(default=None, max_length=4000)


class TransferConfig(WireModel):
    description: str | None = Field(default=None, max_length=4000)
    destinations: list[TransferDestination] = Field(min_length=1, max_length=50)


class _TemplateBase(WireModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)


class FunctionTemplate(_TemplateBase):
    tool_type: Literal["function"]
    tool_config: FunctionTool


class EndCallTemplate(_TemplateBase):
    tool_type: Literal["endCall"]
    tool_config: EndCallConfig = Field(default_factory=EndCallConfig)


class TransferTemplate(_TemplateBase):
    tool_type: Literal["transferCall"]
    tool_config: TransferConfig


AnyTemplate = FunctionTemplate | EndCallTemplate | TransferTemplate


class ToolTemplateCreate(
    RootModel[
        Annotated[
            Annotated[AnyTemplate, Field(discriminator="tool_type")],
            BeforeValidator(normalize_template_body),
        ]
    ]
):
    """One of the three template kinds, chosen by ``tool_type``."""


class ToolTemplateUpdate(WireModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    tool_type: ToolType | None = Field(
        default=None, validation_alias=AliasChoices("tool_type", "toolType")
    )
    tool_config: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("tool_config", "toolConfig")
    )

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        return normalize_template_body(data)


class ToolTemplateOut(OutModel):
    id: str
    org_id: str
    name: str
    description: str | None
    tool_type: ToolType
    tool_config: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


def template_config(template: AnyTemplate) -> dict[str, Any]:
    """A template's ``tool_config`` as stored (the ``tool_type`` carries the type)."""
    dumped = template.tool_config.model_dump(by_alias=True, exclude_none=True, mode="json")
    dumped.pop("type", None)
    return dumped


_TEMPLATE_TYPES: dict[str, type[AnyTemplate]] = {
    "function": FunctionTemplate,
    "endCall": EndCallTemplate,
    "transferCall": TransferTemplate,
}


def validate_tool_config(tool_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """Check a template's ``tool_config`` against its type; returns the normal form."""
    template = _TEMPLATE_TYPES[tool_type].model_validate(
        {"name": "x", "tool_type": tool_type, "tool_config": config}
    )
    return template_config(template)


def tool_from_template(tool_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """The ``llm_config.tools`` entry a template is copied into."""
    return {"type": tool_type, **config}
