"""``/calls/{id}/recording``: download (streamed, with ``Range``) and delete.

Two ways in: the API key (``Authorization: Bearer``), or a signed link
(``?channels=&expires=&signature=``, the call object's ``recording_url`` and
``stereo_recording_url``) that needs no key — a browser's ``<audio>`` element
or a customer's webhook handler fetches it as is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from flireo.api.auth import principal, services
from flireo.api.errors import error_response, error_responses
from flireo.domain.common import ErrorResponse
from flireo.errors import NotFound, UpstreamError
from flireo.recordings.encode import CONTENT_TYPES, RecordingFormat
from flireo.recordings.links import Channel
from flireo.recordings.ranges import RangeNotSatisfiable, parse_range
from flireo.recordings.service import stored_key
from flireo.recordings.storage import RecordingMissing, StorageError
from flireo.services import calls as svc_calls
from flireo.services.container import Services
from flireo.store.tables import Call

router = APIRouter(prefix="/calls", tags=["Recordings"], responses=error_responses(400, 401, 429))

_NO_RECORDING = "This call has no recording"


async def _call_for(
    request: Request,
    svc: Services,
    call_id: str,
    channel: Channel,
    expires: str | None,
    signature: str | None,
) -> Call:
    if expires is not None or signature is not None:
        svc.recordings.links.verify(
            call_id, channel, expires or "", signature or "", svc.clock.now()
        )
        async with svc.db.read() as s:
            call = await s.get(Call, call_id)
        if call is None:
            raise NotFound("Call not found")
        return call
    who = await principal(request)
    async with svc.db.read() as s:
        return await svc_calls.get_call(s, who.org_id, call_id)


_DOWNLOAD: dict[str, Any] = {
    "summary": "Download the call's recording (stereo: caller left, agent right; or mono)",
    "response_class": Response,
    "responses": {
        200: {"content": {"audio/wav": {}, "audio/ogg": {}}, "description": "The recording"},
        206: {"description": "The requested byte range"},
        **error_responses(404, 502),
        403: {"model": ErrorResponse, "description": "Expired or tampered signed link"},
        416: {
            "model": ErrorResponse,
            "description": "Range not satisfiable (`Content-Range: bytes */<size>`)",
        },
    },
}


# GET and HEAD as two operations (one api_route with both methods gives both the
# same operationId, which OpenAPI forbids)
@router.get("/{call_id}/recording", operation_id="get_call_recording", **_DOWNLOAD)
@router.head("/{call_id}/recording", operation_id="head_call_recording", **_DOWNLOAD)
async def get_recording(
    call_id: str,
    request: Request,
    channels: Channel = Query("stereo", description="stereo (default) or mono"),
    expires: str | None = Query(None, description="signed link: expiry (unix seconds)"),
    signature: str | None = Query(None, description="signed link: signature"),
    svc: Services = Depends(services),
) -> Response:
    call = await _call_for(request, svc, call_id, channels, expires, signature)
    key = stored_key(call, channels)
    if key is None:
        raise NotFound(_NO_RECORDING, code="recording_not_found")
    storage = svc.recordings.storage
    try:
        size = await storage.size(key)
    except RecordingMissing:
        raise NotFound(_NO_RECORDING, code="recording_not_found") from None
    except StorageError as exc:
        raise UpstreamError(f"Recording storage failed: {exc}") from exc
    fmt: RecordingFormat = "ogg" if call.recording_format == "ogg" else "wav"
    filename = f"{call.id}{'' if channels == 'stereo' else '.mono'}.{fmt}"
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": CONTENT_TYPES[fmt],
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, max-age=3600",
        "ETag": f'"{key.rsplit("/", 1)[-1]}-{size}"',
    }
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable as exc:
        return error_response(
            416,
            exc.code,
            exc.message,
            type_=exc.type,
            param=exc.param,
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )
    status, start, end = 200, 0, size
    if wanted is not None:
        status, start, end = 206, wanted.start, wanted.end
        headers["Content-Range"] = wanted.content_range(size)
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(_body(svc, key, start, end), status_code=status, headers=headers)


async def _body(svc: Services, key: str, start: int, end: int) -> AsyncIterator[bytes]:
    async for chunk in svc.recordings.storage.read(key, start, end):
        yield chunk


@router.delete(
    "/{call_id}/recording",
    status_code=204,
    summary="Delete the call's recording (also when it has none: idempotent)",
    responses=error_responses(404, 502),
)
async def delete_recording(
    call_id: str, request: Request, svc: Services = Depends(services)
) -> Response:
    who = await principal(request)
    async with svc.db.read() as s:
        call = await svc_calls.get_call(s, who.org_id, call_id)
    try:
        await svc.recordings.delete_objects(call)
    except StorageError as exc:
        raise UpstreamError(f"Recording storage failed: {exc}") from exc
    async with svc.db.transaction() as s:
        locked = await s.get(Call, call.id, with_for_update=True)
        if locked is not None:
            await svc.recordings.clear(s, locked)
    return Response(status_code=204)
