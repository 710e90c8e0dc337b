"""Wire conventions shared by every resource (flireo-api README §2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Self, get_args

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)


def format_timestamp(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: ``2025-12-13T10:00:00.000Z``."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: accepted with or without milliseconds/offset; emitted as ``...SS.mmmZ``
Timestamp = Annotated[
    datetime,
    AfterValidator(_aware),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    Field(json_schema_extra={"example": "2025-12-13T10:00:00.000Z"}),
]

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"

#: an E.164 number, e.g. ``+31850835037`` (no spaces or punctuation)
E164 = Annotated[str, Field(pattern=E164_PATTERN, examples=["+31850835037"])]

#: printable ASCII without spaces: what API keys and SIP credentials may contain
Token = Annotated[str, Field(pattern=r"^[!-~]+$")]

_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


def _iso_only(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("use an ISO-8601 date-time such as 2025-12-13T10:00:00Z")
    return value


#: query-string datetimes: ISO-8601 only (no Unix numbers), any offset, UTC inside
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_aware)]


@cache
def _int_keys(model: type[BaseModel]) -> frozenset[str]:
    """Input keys (names and aliases) of the model's integer fields."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if annotation is not int and int not in get_args(annotation):
            continue
        keys |= {name, *([info.alias] if info.alias else [])}
        choices = info.validation_alias
        if isinstance(choices, AliasChoices):
            keys |= {c for c in choices.choices if isinstance(c, str)}
        elif isinstance(choices, str):
            keys.add(choices)
    return frozenset(keys)


#: never in any text: PostgreSQL cannot store it (a 500 there), and it truncates C strings
_NUL = "\x00"
#: not in names and identifiers: C0 controls, DEL, and the bidirectional
#: embeddings/overrides (U+202A-U+202E) and isolates (U+2066-U+2069) that make a
#: name display as something else ("Trojan Source")
_UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

#: request fields that hold prose (prompts, messages, descriptions): newlines and
#: tabs are fine there, NUL is not. Every other string field is a name or an
#: identifier; JSON objects (tool parameters, lead variables, schemas) are free-form
#: except for NUL.
FREE_TEXT_FIELDS = frozenset(
    {
        "async_response",
        "content",
        "context",
        "description",
        "first_message",
        "message",
        "messages",
        "prompt",
        "reason",
        "rubric",
        "system_message_template",
        "system_prompt",
        "user_prompt",
        "voicemail_message",
    }
)


def text_problem(value: object, *, free: bool) -> str | None:
    """Why ``value`` (a request value, possibly nested) is not acceptable text, or None."""
    if isinstance(value, str):
        if free:
            return "must not contain NUL characters (U+0000)" if _NUL in value else None
        found = _UNSAFE_IN_NAMES.search(value)
        if found is None:
            return None
        return (
            "must not contain control or bidirectional-override characters "
            f"(found U+{ord(found.group()):04X})"
        )
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            if problem := text_problem(item, free=free):
                return problem
    elif isinstance(value, dict):
        for key, item in value.items():
            if problem := text_problem(key, free=True) or text_problem(item, free=True):
                return problem
    elif isinstance(value, BaseModel) and not isinstance(value, JsonTypes):
        # plain nested models (chat messages): free-form; JsonTypes check themselves
        for item in value.__dict__.values():
            if problem := text_problem(item, free=True):
                return problem
    return None


class JsonTypes(BaseModel):
    """Strict JSON types: ``"5"`` is not a number and ``true`` is not 1, but ``5.0``
    is an integer (as in JSON Schema).

    Also the one text rule of every request body (issue 14 item 7): no NUL
    anywhere, and no control or bidi-override characters in names and identifiers
    (every string field not in :attr:`free_text_fields`): a 400 naming the field."""

    model_config = ConfigDict(strict=True)
    free_text_fields: ClassVar[frozenset[str]] = FREE_TEXT_FIELDS

    @field_validator("*", mode="after")
    @classmethod
    def _safe_text(cls, value: Any, info: ValidationInfo) -> Any:
        problem = text_problem(value, free=info.field_name in cls.free_text_fields)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _safe_extra_text(self) -> Self:
        """Extra keys of models that allow them (vendor options): free-form, NUL never."""
        extra = self.__pydantic_extra__
        if extra and (problem := text_problem(extra, free=True)) is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        keys = _int_keys(cls)
        return {
            k: int(v) if k in keys and isinstance(v, float) and v.is_integer() else v
            for k, v in data.items()
        }


class WireModel(JsonTypes):
    """Base for request bodies: unknown fields are a clear 400, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


HTTP_URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"


class OutModel(BaseModel):
    """Base for responses."""

    model_config = ConfigDict(populate_by_name=True, from_attributes=True)


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_request"])
    message: str
    param: str | None = None
    type: str = Field(examples=["invalid_request_error"])


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Pagination(BaseModel):
    total: int
    limit: int
    offset: int


class SuccessMessage(BaseModel):
    success: bool = True
    message: str


JsonObject = dict[str, Any]


def _check_json_schema(v: dict[str, Any]) -> dict[str, Any]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(v)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
    return v


#: a JSON Schema document (checked against the 2020-12 meta-schema)
JsonSchemaDoc = Annotated[dict[str, Any], AfterValidator(_check_json_schema)]


@dataclass(frozen=True, slots=True)
class Page:
    """Offset/limit window of a list query."""

    limit: int = 100
    offset: int = 0
