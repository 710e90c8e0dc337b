"""A client for Resend's REST API (domains), over httpx.

Wire facts relied on (resend.com/docs/api-reference/domains): bearer auth with
the ``re_...`` key; ``POST /domains {name, region}`` returns the domain with
its DNS ``records`` (``record, name, type, ttl, status, value, priority``);
``GET /domains`` returns ``{"object": "list", "data": [...]}``; ``GET
/domains/{id}``; ``POST /domains/{id}/verify``; ``DELETE /domains/{id}``.
Errors are ``{"statusCode", "message", "name"}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from flireo.errors import FlireoError, InvalidRequest, NotFound, UpstreamError
from flireo.webhooks.signing import USER_AGENT


class ResendError(UpstreamError):
    pass


class ResendClient:
    def __init__(self, api_key: str, *, base_url: str, http: httpx.AsyncClient) -> None:
        self._key = api_key
        self._base = base_url.rstrip("/")
        self._http = http

    async def _request(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        try:
            response = await self._http.request(
                method,
                self._base + path,
                json=json,
                headers={"Authorization": f"Bearer {self._key}", "User-Agent": USER_AGENT},
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise ResendError(f"Resend is unreachable: {type(exc).__name__}") from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if response.is_success:
            return body if isinstance(body, dict) else {"data": body}
        raise _error(response.status_code, body)

    async def create_domain(self, name: str, region: str) -> dict[str, Any]:
        return await self._request("POST", "/domains", {"name": name, "region": region})

    async def list_domains(self) -> list[dict[str, Any]]:
        body = await self._request("GET", "/domains")
        data = body.get("data", [])
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    async def get_domain(self, domain_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/domains/{domain_id}")

    async def verify_domain(self, domain_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/domains/{domain_id}/verify")

    async def delete_domain(self, domain_id: str) -> None:
        try:
            await self._request("DELETE", f"/domains/{domain_id}")
        except NotFound:
            return  # already gone at Resend


def _error(status: int, body: Any) -> FlireoError:
    message = body.get("message") if isinstance(body, dict) else None
    text = f"Resend: {message or f'HTTP {status}'}"
    if status == 404:
        return NotFound(text, code="resend_not_found")
    if status in (401, 403):
        return InvalidRequest(f"{text} (check your Resend BYOK key)", code="resend_unauthorized")
    if status in (400, 409, 422):
        return InvalidRequest(text, code="resend_rejected")
    return ResendError(text)
