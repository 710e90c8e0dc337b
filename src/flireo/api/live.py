"""Live events as Server-Sent Events (``GET /calls/{id}/events``, ``GET /calls/events``)
and browser calls (``POST /calls/web``, see :mod:`flireo.webcall.service`).

Each message is ``event: <type>`` and ``data: <json object>`` (one line),
then a blank line. Idle streams get a ``: ping`` comment every
``FLIREO_SSE_HEARTBEAT_SECONDS`` (15 s), and at each ping the call's stored
status is read again, so a terminal status the bus lost (its owner died)
still ends the stream. The events come from the bus (the call's owner
publishes them, on any node): see :mod:`flireo.services.live_events`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.bus.events import TERMINAL, EventSubscription
from flireo.errors import InvalidRequest
from flireo.services import calls as svc_calls
from flireo.services.container import Services
from flireo.store.tables import Call
from flireo.webcall.service import WebCallRequest, WebCallResponse

router = APIRouter(prefix="/calls", tags=["Calls"], responses=error_responses(401, 429))

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_PING = b": ping\n\n"
_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `text/event-stream` of `event:`/`data:` messages",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def sse(type_: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {type_}\ndata: {body}\n\n".encode()


def _status_data(call: Call) -> dict[str, Any]:
    data: dict[str, Any] = {"call_id": call.id, "status": call.status}
    if call.ended_reason:
        data["ended_reason"] = call.ended_reason
    return data


async def _stored_status(svc: Services, org_id: str, call_id: str) -> dict[str, Any]:
    async with svc.db.read() as s:
        return _status_data(await svc_calls.get_call(s, org_id, call_id))


async def _close(sub: EventSubscription) -> None:
    with anyio.CancelScope(shield=True):  # the client left: still release the channel
        await sub.close()


@router.get(
    "/events",
    summary="Live status of every call of the organization (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,
)
async def organization_events(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> StreamingResponse:
    heartbeat = svc.settings.sse_heartbeat_seconds

    async def stream() -> AsyncIterator[bytes]:
        sub = await svc.bus.subscribe_events(who.org_id)
        try:
            yield _PING  # sent at once: the client knows it is connected
            while True:
                try:
                    item = await sub.get(within=heartbeat)
                except TimeoutError:
                    yield _PING
                    continue
                if item is None:  # cut off (too slow): the client reconnects
                    return
                if item["type"] == "status-update":
                    yield sse("status-update", item["data"])
        finally:
            await _close(sub)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_HEADERS)


@router.get(
    "/{call_id}/events",
    summary="A call's live events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={**_STREAM_DOC, **error_responses(404)},
)
async def call_events(
    call_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> StreamingResponse:
    current = await _stored_status(svc, who.org_id, call_id)  # 404 for another org's call
    if current["status"] in TERMINAL:
        return StreamingResponse(
            iter([sse("status-update", current)]), media_type="text/event-stream", headers=_HEADERS
        )
    heartbeat = svc.settings.sse_heartbeat_seconds

    async def stream() -> AsyncIterator[bytes]:
        sub = await svc.bus.subscribe_events(who.org_id, call_id)
        try:
            # read again now that we listen: a change in between is not lost
            state = await _stored_status(svc, who.org_id, call_id)
            last = state["status"]
            yield sse("status-update", state)
            if last in TERMINAL:
                return
            while True:
                try:
                    item = await sub.get(within=heartbeat)
                except TimeoutError:
                    yield _PING
                    state = await _stored_status(svc, who.org_id, call_id)
                    if state["status"] in TERMINAL:  # its end was not heard on the bus
                        yield sse("status-update", state)
                        return
                    continue
                if item is None:
                    return
                type_, data = item["type"], item["data"]
                if type_ == "status-update":
                    if data.get("status") == last:
                        continue  # already told (the state sent first)
                    last = data.get("status")
                    yield sse(type_, data)
                    if last in TERMINAL:
                        return
                else:
                    yield sse(type_, data)
        finally:
            await _close(sub)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_HEADERS)


@router.post(
    "/web",
    status_code=201,
    response_model=WebCallResponse,
    summary="Talk to an agent from a browser: a WebRTC offer in, the answer out",
    responses=error_responses(400, 402, 422),
)
async def create_web_call(
    body: WebCallRequest, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> WebCallResponse:
    if svc.web_calls is None:
        raise InvalidRequest(
            "Browser calls are not available on this server", code="web_calls_unavailable"
        )
    return await svc.web_calls.start(who.org_id, body)
