"""A local Resend API (domains) for tests.

with serve(FakeResend(api_key="re_test").app()) as srv:
    settings.resend_base_url = srv.url
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REGION_MX = "feedback-smtp.{region}.amazonses.com"


def _records(name: str, region: str, dkim: str) -> list[dict[str, Any]]:
    return [
        {
            "record": "SPF",
            "name": "send",
            "type": "MX",
            "ttl": "Auto",
            "status": "not_started",
            "value": REGION_MX.format(region=region),
            "priority": 10,
        },
        {
            "record": "SPF",
            "name": "send",
            "type": "TXT",
            "ttl": "Auto",
            "status": "not_started",
            "value": '"v=spf1 include:amazonses.com ~all"',
        },
        {
            "record": "DKIM",
            "name": f"{dkim}._domainkey",
            "type": "CNAME",
            "ttl": "Auto",
            "status": "not_started",
            "value": f"{dkim}.dkim.amazonses.com.",
        },
    ]


@dataclass
class FakeResend:
    api_key: str
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys_seen: list[str] = field(default_factory=list)
    #: domain names Resend refuses (422 validation_error)
    refused: set[str] = field(default_factory=set)
    verify_calls: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _auth(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        key = header.removeprefix("Bearer ")
        with self._lock:
            self.keys_seen.append(key)
        if not header.startswith("Bearer "):
            return JSONResponse(
                {"statusCode": 401, "message": "Missing API key", "name": "missing_api_key"}, 401
            )
        if key != self.api_key:
            return JSONResponse(
                {"statusCode": 403, "message": "API key is invalid", "name": "invalid_api_key"}, 403
            )
        return None

    def add(self, name: str, region: str = "eu-west-1", status: str = "not_started") -> str:
        domain_id = str(uuid.uuid4())
        self.domains[domain_id] = {
            "object": "domain",
            "id": domain_id,
            "name": name,
            "status": status,
            "created_at": "2026-01-01T00:00:00.000000+00:00",
            "region": region,
            "records": _records(name, region, uuid.uuid4().hex[:12]),
        }
        return domain_id

    def app(self) -> Starlette:
        async def create(request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            body = await request.json()
            name = body.get("name")
            if not name or name in self.refused:
                return JSONResponse(
                    {
                        "statusCode": 422,
                        "message": "Invalid domain name",
                        "name": "validation_error",
                    },
                    422,
                )
            domain_id = self.add(name, body.get("region", "us-east-1"))
            data = {k: v for k, v in self.domains[domain_id].items() if k != "object"}
            return JSONResponse(data)

        async def listing(request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            data = [
                {k: d[k] for k in ("id", "name", "status", "created_at", "region")}
                for d in self.domains.values()
            ]
            return JSONResponse({"object": "list", "has_more": False, "data": data})

        def missing() -> JSONResponse:
            return JSONResponse(
                {"statusCode": 404, "message": "Domain not found", "name": "not_found"}, 404
            )

        async def one(request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            domain_id = request.path_params["domain_id"]
            if domain_id not in self.domains:
                return missing()
            if request.method == "DELETE":
                del self.domains[domain_id]
                return JSONResponse({"object": "domain", "id": domain_id, "deleted": True})
            return JSONResponse(self.domains[domain_id])

        async def verify(request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            domain_id = request.path_params["domain_id"]
            if domain_id not in self.domains:
                return missing()
            self.verify_calls.append(domain_id)
            self.domains[domain_id]["status"] = "pending"
            return JSONResponse({"object": "domain", "id": domain_id})

        return Starlette(
            routes=[
                Route("/domains", create, methods=["POST"]),
                Route("/domains", listing, methods=["GET"]),
                Route("/domains/{domain_id}", one, methods=["GET", "DELETE"]),
                Route("/domains/{domain_id}/verify", verify, methods=["POST"]),
            ]
        )
