"""A customer's webhook endpoint for tests: records every request (raw body and
headers) and answers what the test scripts.

    receiver = WebhookReceiver()
    receiver.script(503, 503)            # the next two requests fail
    with serve(receiver.app()) as srv:   # then 200s
        ... srv.url + "/hook" ...
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class WebhookReceiver:
    requests: list[Received] = field(default_factory=list)
    #: (status, headers) answered to the next requests, then ``default_status``
    _script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    default_status: int = 200
    #: a JSON reply for synchronous events (assistant-request, tool-calls)
    reply: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            for item in statuses:
                self._script.append(item if isinstance(item, tuple) else (item, {}))

    def delivered(self) -> list[Received]:
        """Requests answered with a 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                status, headers = (
                    self._script.popleft() if self._script else (self.default_status, {})
                )
                self.requests.append(Received(dict(request.headers), body, status))
            if self.reply is not None and 200 <= status < 300:
                return JSONResponse(self.reply, status_code=status, headers=headers)
            return Response(b"ok" if status < 300 else b"nope", status_code=status, headers=headers)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
