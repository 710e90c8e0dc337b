"""The text rule of :mod:`flireo.domain.common` stated in the OpenAPI document
(issue 14 item 7), so clients and schema-driven testers know it: one pass over
the generated document.

- path and query parameters, and every string property of the request bodies'
  schemas (found from the request bodies, through ``$ref``s): names and
  identifiers get a ``pattern`` without C0 controls, DEL and bidi controls;
  the prose fields (:data:`~flireo.domain.common.FREE_TEXT_FIELDS`) and the
  values of free-form objects a pattern without NUL;
- existing patterns that allow any non-space character (``\\S``) are narrowed
  the same way; strings with an ``enum``, ``const``, ``format`` or their own
  stricter pattern are left as they are;
- free-form JSON values (``dict[str, Any]``: tool parameters, schemas) refer to
  ``JsonWithoutNul``, a recursive schema of any JSON without NUL in its strings;
- an operation with a rule on its path or query parameters documents the 400.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from flireo.domain.common import FREE_TEXT_FIELDS

_UNSAFE = r"\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069"
NAME_PATTERN = f"^[^{_UNSAFE}]*$"
PROSE_PATTERN = r"^[^\u0000]*$"
_NON_SPACE = r"\S"
_SAFE_NON_SPACE = rf"[^\s{_UNSAFE}]"


def _snake(name: str) -> str:
    """The field name behind a camelCase alias (``asyncResponse`` -> ``async_response``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _constrain_string(schema: dict[str, Any], *, prose: bool) -> None:
    if any(k in schema for k in ("enum", "const", "format")):
        return
    pattern = schema.get("pattern")
    if pattern is None:
        schema["pattern"] = PROSE_PATTERN if prose else NAME_PATTERN
    elif _NON_SPACE in pattern:
        schema["pattern"] = pattern.replace(_NON_SPACE, _SAFE_NON_SPACE)


JSON_WITHOUT_NUL = "JsonWithoutNul"
_JSON_REF = {"$ref": f"#/components/schemas/{JSON_WITHOUT_NUL}"}
_JSON_WITHOUT_NUL = {
    "description": "Any JSON value; no string in it (keys included) contains NUL (U+0000).",
    "anyOf": [
        {"type": "string", "pattern": PROSE_PATTERN},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _JSON_REF},
        {
            "type": "object",
            "propertyNames": {"pattern": PROSE_PATTERN},
            "additionalProperties": _JSON_REF,
        },
    ],
}
_BAD_REQUEST = {
    "description": "Invalid request (validation error; `param` names the field)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def _free_form(schema: dict[str, Any]) -> bool:
    """An object whose values may be anything (pydantic's ``dict[str, Any]``)."""
    return (
        schema.get("type") == "object"
        and "properties" not in schema
        and schema.get("additionalProperties", True) in (True, {})
    )


class _Walker:
    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components
        self.seen: set[str] = set()

    def schema(self, schema: Any, *, prose: bool) -> None:
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in self.seen and name in self.components:
                self.seen.add(name)
                self.schema(self.components[name], prose=False)
            return
        if schema.get("type") == "string":
            _constrain_string(schema, prose=prose)
        if _free_form(schema):
            schema["propertyNames"] = {"pattern": PROSE_PATTERN}
            schema["additionalProperties"] = dict(_JSON_REF)
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                self.schema(sub, prose=prose)
        items = schema.get("items")
        if isinstance(items, dict):
            self.schema(items, prose=prose)
        for name, sub in (schema.get("properties") or {}).items():
            self.schema(sub, prose=prose or _snake(name) in FREE_TEXT_FIELDS)
        extra = schema.get("additionalProperties")
        if extra is True and "properties" in schema:  # declared fields + any vendor option
            schema["propertyNames"] = {"pattern": PROSE_PATTERN}
            schema["additionalProperties"] = dict(_JSON_REF)
        elif isinstance(extra, dict):
            schema.setdefault("propertyNames", {"pattern": PROSE_PATTERN})
            self.schema(extra, prose=True)  # free-form values: NUL only


def apply_text_rules(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components[JSON_WITHOUT_NUL] = _JSON_WITHOUT_NUL
    walker = _Walker(components)
    for operations in (document.get("paths") or {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            checked = [
                p for p in operation.get("parameters", []) if p.get("in") in ("path", "query")
            ]
            for parameter in checked:
                walker.schema(parameter.get("schema"), prose=False)
            if checked and "ErrorResponse" in components:
                operation.setdefault("responses", {}).setdefault("400", _BAD_REQUEST)
            for media in ((operation.get("requestBody") or {}).get("content") or {}).values():
                walker.schema(media.get("schema"), prose=False)
    return document


def install_text_rules(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with the text rules applied."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = apply_text_rules(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
