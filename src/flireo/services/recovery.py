"""After a crash: end the calls this node left active, exactly once."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import select

from flireo.domain.calls import ACTIVE_STATUSES, DialEndedReason
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.store.tables import Call

log = structlog.get_logger(__name__)

#: an unowned call younger than this may still be picked up by a dialer elsewhere
UNOWNED_GRACE = timedelta(minutes=2)


async def end_interrupted_calls(lifecycle: CallLifecycle, node_id: str) -> int:
    """Finish active calls owned by ``node_id`` (and stale unowned ones)."""
    now = lifecycle.clock.now()
    async with lifecycle.db.read() as s:
        rows = (
            await s.execute(
                select(Call.id, Call.status, Call.owner_node, Call.created_at).where(
                    Call.status.in_(ACTIVE_STATUSES)
                )
            )
        ).all()
    ended = 0
    for call_id, status, owner, created_at in rows:
        if owner not in (node_id, None) or (owner is None and now - created_at < UNOWNED_GRACE):
            continue
        if status == "in-progress":
            completion = CallCompletion(
                status="ended",
                ended_reason="call-interrupted",
                error="the server stopped during the call",
            )
        else:
            completion = CallCompletion(
                status="failed",
                ended_reason=DialEndedReason.INTERRUPTED,
                error="the server stopped while the call was being set up",
            )
        if await lifecycle.finish(call_id, completion):
            ended += 1
    if ended:
        log.warning("ended calls interrupted by a restart", count=ended)
    return ended
