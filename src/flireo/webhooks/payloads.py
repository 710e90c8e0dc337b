"""Webhook bodies (webhooks.md §5-§9): ``{"message": {"type", "timestamp", "call",
"phoneNumber", "customer", ...}}``. The call id is the REST call id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flireo.domain.common import format_timestamp
from flireo.recordings.service import report_fields
from flireo.settings import Settings
from flireo.store.tables import Call

#: REST status → the status a webhook reports
_WEBHOOK_STATUS = {
    "connecting": "ringing",
    "dialing": "ringing",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "ended": "ended",
    "failed": "ended-with-error",
    "rejected": "ended-with-error",
}


def webhook_status(rest_status: str) -> str:
    return _WEBHOOK_STATUS.get(rest_status, rest_status)


def call_type(direction: str | None) -> str:
    """The call object's ``type``: ``inboundPhoneCall``, ``outboundPhoneCall`` or ``webCall``."""
    if direction == "web":
        return "webCall"
    return "outboundPhoneCall" if direction == "outbound" else "inboundPhoneCall"


def call_object(call: Call, *, status: str | None = None) -> dict[str, Any]:
    realtime = bool((call.overrides or {}).get("pipeline") == "realtime")
    return {
        "id": call.id,
        "type": call_type(call.direction),
        "status": status or webhook_status(call.status),
        "pipeline": "realtime" if realtime else "standard",
    }


def envelope(
    event_type: str,
    call: Call,
    *,
    number_name: str | None,
    now: datetime,
    call_status: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": event_type,
        "timestamp": format_timestamp(now),
        "call": call_object(call, status=call_status),
        "phoneNumber": {"number": call.assistant_phone, "name": number_name},
        "customer": {"number": call.caller_phone},
    }
    message.update(fields)
    return {"message": message}


def status_update(
    call: Call, *, number_name: str | None, now: datetime, status: str, error: str | None
) -> dict[str, Any]:
    extra: dict[str, Any] = {"status": webhook_status(status)}
    if error:
        extra["error"] = error
    if call.ended_reason and status in ("ended", "failed", "rejected"):
        extra["endedReason"] = call.ended_reason
    return envelope(
        "status-update",
        call,
        number_name=number_name,
        now=now,
        call_status=webhook_status(status),
        **extra,
    )


def end_of_call_report(
    call: Call, *, number_name: str | None, now: datetime, settings: Settings | None = None
) -> dict[str, Any]:
    """Rendered from the finished call record (analysis included when done).
    ``settings``: the server's, for the signed recording links (none without)."""
    fields: dict[str, Any] = {
        "endedReason": call.ended_reason,
        "durationSeconds": call.duration_seconds or 0,
        "summary": call.summary or "",
        "transcript": call.transcript or "",
        "messages": call.messages or [],
        "startedAt": format_timestamp(call.started_at) if call.started_at else None,
        "endedAt": format_timestamp(call.ended_at) if call.ended_at else None,
        "cost": float(call.cost) if call.cost is not None else 0.0,
    }
    if call.analysis_result:
        fields["analysis"] = call.analysis_result
    if call.metrics:
        fields["metrics"] = call.metrics
    if call.error:
        fields["error"] = call.error
    if settings is not None:
        fields.update(report_fields(call, settings, now))
    else:
        fields.update(recordingUrl=None, stereoRecordingUrl=None)
    return envelope("end-of-call-report", call, number_name=number_name, now=now, **fields)
