"""Every error leaves the API in one shape:
``{"error": {"code", "message", "param", "type"}}`` (flireo-api guides §8)."""

from __future__ import annotations

import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from flireo.domain.common import ErrorResponse
from flireo.errors import FlireoError, RateLimited, Unauthorized

log = structlog.get_logger(__name__)

_STATUS_CODES = {
    400: ("invalid_request", "invalid_request_error"),
    401: ("unauthorized", "authentication_error"),
    403: ("forbidden", "permission_error"),
    404: ("not_found", "not_found_error"),
    405: ("method_not_allowed", "invalid_request_error"),
    409: ("conflict", "conflict_error"),
    413: ("payload_too_large", "invalid_request_error"),
    415: ("unsupported_media_type", "invalid_request_error"),
    422: ("unprocessable_entity", "invalid_request_error"),
    429: ("rate_limit_exceeded", "rate_limit_error"),
}


def error_body(code: str, message: str, *, type_: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "param": param, "type": type_}}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    type_: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, type_=type_, param=param), status_code=status, headers=headers
    )


def _param(loc: tuple[Any, ...]) -> str | None:
    """``("body", "LeadBulkCreate", "leads", 0, "phone_number")`` → ``leads.0.phone_number``:
    drop the location and the names pydantic gives union members and validators."""
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else []
    parts = [
        p
        for p in parts
        if not (p[:1].isupper() or p.startswith("function-") or p == "tagged-union")
    ]
    return ".".join(parts) or None


def validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    first = errors[0] if errors else {"type": "value_error", "loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        return error_response(
            400, "invalid_request", "Request body is not valid JSON", type_="invalid_request_error"
        )
    param = _param(tuple(first.get("loc", ())))
    if first.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        ctx = first.get("ctx")
        tag = str(ctx.get("discriminator", "")).strip("'") if isinstance(ctx, dict) else ""
        param = ".".join(p for p in (param, tag) if p) or None
    if first.get("type") in ("missing", "union_tag_not_found"):
        code = "missing_field"
        message = f"Missing required field: {param}" if param else "Missing request body"
    else:
        code = "invalid_request"
        msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        message = f"Invalid value for {param}: {msg}" if param else msg
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_response(400, code, message, type_="invalid_request_error", param=param)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def _allow_table(app: Any) -> list[tuple[re.Pattern[str], bool, frozenset[str]]]:
    """(path pattern, has parameters, methods) for every documented path, built
    once per app from its OpenAPI schema (stable across FastAPI's internal route
    representations)."""
    table: list[tuple[re.Pattern[str], bool, frozenset[str]]] | None = getattr(
        app.state, "allow_table", None
    )
    if table is None:
        table = []
        for path, operations in (app.openapi().get("paths") or {}).items():
            pattern = "/".join(
                "[^/]+" if part.startswith("{") else re.escape(part) for part in path.split("/")
            )
            methods = frozenset(m.upper() for m in operations if m in _HTTP_METHODS)
            table.append((re.compile(f"^{pattern}/?$"), "{" in path, methods))
        app.state.allow_table = table
    return table


def allowed_methods(request: Request) -> list[str]:
    """Every method the route at this path serves, for the 405's ``Allow``: a
    literal path (``/calls/outbound``) shadows templates (``/calls/{call_id}``)."""
    path = request.url.path
    found = [
        (templated, served)
        for pattern, templated, served in _allow_table(request.app)
        if pattern.match(path)
    ]
    literal = [served for templated, served in found if not templated]
    methods: set[str] = set()
    for served in literal or [served for _, served in found]:
        methods |= served
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FlireoError)
    async def _flireo(_: Request, exc: FlireoError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(
            exc.status, exc.code, exc.message, type_=exc.type, param=exc.param, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, type_ = _STATUS_CODES.get(exc.status_code, ("error", "api_error"))
        if exc.status_code == 404:
            message = f"No route for {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
            headers = dict(exc.headers or {})
            headers["Allow"] = ", ".join(allowed_methods(request))
            return error_response(405, code, message, type_=type_, headers=headers)
        else:
            message = str(exc.detail)
        return error_response(
            exc.status_code, code, message, type_=type_, headers=dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path, method=request.method)
        return error_response(
            500, "internal_error", "An unexpected error occurred", type_="api_error"
        )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the documented error statuses."""
    descriptions = {
        400: "Invalid request (validation error; `param` names the field)",
        401: "Missing, invalid, expired or revoked API key",
        402: "Insufficient credits",
        403: "Refused by the organization's policy (e.g. the outbound dial policy)",
        404: "Unknown resource (or one of another organization)",
        409: "Duplicate",
        413: "Request body too large",
        422: "Well-formed but not processable",
        429: "Rate limit exceeded (see `Retry-After`)",
        502: "Upstream provider failed",
    }
    return {s: {"model": ErrorResponse, "description": descriptions[s]} for s in statuses}
