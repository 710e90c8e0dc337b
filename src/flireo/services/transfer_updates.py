"""The ``transfer-update`` webhook: the outcome of every transfer attempt of a call
(control ``transfer`` command or the ``transferCall`` tool), as Vapi sends it.

Body: the common envelope (webhooks.md §5) with ``message.type =
"transfer-update"``, ``destination`` — ``{"type": "number", "number": "+31..."}``
or ``{"type": "sip", "sipUri": "sip:..."}`` — and Flireo's outcome fields
``status`` (``succeeded`` / ``failed``) and ``detail`` (why it failed, or how it
went: ``REFER accepted (202)``, ``bridged through the trunk``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flireo.store.db import Database
from flireo.store.tables import Call
from flireo.webhooks import outbox, payloads

EVENT = "transfer-update"


def destination_object(destination: str) -> dict[str, str]:
    if destination.startswith(("sip:", "sips:")):
        return {"type": "sip", "sipUri": destination}
    return {"type": "number", "number": destination}


def transfer_update(
    call: Call,
    *,
    number_name: str | None,
    now: datetime,
    destination: str,
    ok: bool,
    detail: str,
) -> dict[str, Any]:
    return payloads.envelope(
        EVENT,
        call,
        number_name=number_name,
        now=now,
        destination=destination_object(destination),
        status="succeeded" if ok else "failed",
        detail=detail,
    )


async def record_transfer_update(
    db: Database, call_id: str, destination: str, *, ok: bool, detail: str, now: datetime
) -> bool:
    """Queue the webhook for the call's agent (when it takes it); True when queued."""
    async with db.transaction() as s:
        call = await s.get(Call, call_id)
        if call is None:
            return False
        event = await outbox.enqueue(
            s,
            call,
            EVENT,
            now=now,
            render=lambda name: transfer_update(
                call, number_name=name, now=now, destination=destination, ok=ok, detail=detail
            ),
        )
    return event is not None
