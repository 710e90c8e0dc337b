"""Writing asynchronous webhooks into the outbox, in the caller's transaction.

An event is written together with the state change it reports (a status
change, a finished call), so it is delivered if and only if that change
committed. ``seq`` orders the events of one call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.agents import WEBHOOK_EVENTS
from flireo.store.tables import Agent, Call, PhoneNumber, WebhookEvent, new_id
from flireo.webhooks import payloads

ASYNC_EVENTS = ("status-update", "end-of-call-report")


class _Load(Enum):
    LOAD = "load"


#: ``agent=`` default of :func:`enqueue`: read the call's agent in the session
LOAD: Final = _Load.LOAD
#: the call's agent as the caller holds it, or :data:`LOAD`
KnownAgent = Agent | None | Literal[_Load.LOAD]
#: the name of the call's number as the caller holds it (None: no number, or no name)
KnownName = str | None | Literal[_Load.LOAD]


def wants(agent: Agent | None, event_type: str) -> bool:
    """Whether ``agent`` takes ``event_type`` (an empty ``webhook_events`` means all)."""
    if agent is None or not agent.webhook_url or agent.webhook_disabled_at is not None:
        return False
    selected = agent.webhook_events or list(WEBHOOK_EVENTS)
    return event_type in selected


async def number_name(session: AsyncSession, call: Call) -> str | None:
    if not call.number_id:
        return None
    number = await session.get(PhoneNumber, call.number_id)
    return number.name if number else None


#: Core statements on the table (the ORM's bulk-insert path costs more than the row)
_EVENTS: Final[Table] = WebhookEvent.__table__  # type: ignore[assignment]


#: the INSERT of one event, built once per process: its ``seq`` is the call's next,
#: computed in the statement (``seq_of``: the call id), the other columns are parameters
_INSERT_EVENT: Final = insert(_EVENTS).values(
    seq=select(func.coalesce(func.max(_EVENTS.c.seq), 0) + 1)
    .where(_EVENTS.c.call_id == bindparam("seq_of"))
    .scalar_subquery()
)


async def enqueue(
    session: AsyncSession,
    call: Call,
    event_type: str,
    *,
    now: datetime,
    render: Callable[[str | None], dict[str, Any]] | None = None,
    hold_until: datetime | None = None,
    agent: KnownAgent = LOAD,
    number: KnownName = LOAD,
) -> str | None:
    """Add an event for ``call``'s agent; its id, or None when the agent does not take it.

    ``render`` makes the payload from the number's name, only for an agent that
    takes the event. A ``hold_until`` event waits (status ``held``) until that
    time or until :func:`release` is called; without ``render`` its payload is
    rendered when it is released. ``agent``: the call's agent as the caller just
    read it (its webhook settings decide), instead of reading it again; ``number``:
    likewise the name of the call's number (None: it has none).

    One statement: a Core INSERT whose ``seq`` is the call's next, computed in it.
    """
    taker = (
        (await session.get(Agent, call.agent_id) if call.agent_id else None)
        if isinstance(agent, _Load)
        else agent
    )
    if taker is None or not wants(taker, event_type):
        return None
    assert taker.webhook_url is not None
    payload = None
    if render is not None:
        name = await number_name(session, call) if isinstance(number, _Load) else number
        payload = render(name)
    event_id = new_id()
    await session.execute(
        _INSERT_EVENT,
        {
            "id": event_id,
            "org_id": call.org_id,
            "call_id": call.id,
            "seq_of": call.id,
            "agent_id": taker.id,
            "event_type": event_type,
            "url": taker.webhook_url,
            "payload": payload,
            "status": "held" if hold_until is not None else "pending",
            "hold_until": hold_until,
            "next_attempt_at": hold_until or now,
            "attempts": 0,
            "created_at": now,
        },
    )
    return event_id


async def enqueue_status(
    session: AsyncSession,
    call: Call,
    status: str,
    *,
    now: datetime,
    error: str | None = None,
    agent: KnownAgent = LOAD,
    number: KnownName = LOAD,
) -> str | None:
    def render(name: str | None) -> dict[str, Any]:
        return payloads.status_update(call, number_name=name, now=now, status=status, error=error)

    return await enqueue(
        session, call, "status-update", now=now, render=render, agent=agent, number=number
    )


async def release(session: AsyncSession, call_id: str, event_type: str, *, now: datetime) -> None:
    """Make held events of ``call_id`` due now (e.g. the analysis finished)."""
    rows = await session.execute(
        select(WebhookEvent).where(
            WebhookEvent.call_id == call_id,
            WebhookEvent.event_type == event_type,
            WebhookEvent.status == "held",
        )
    )
    for event in rows.scalars():
        event.status = "pending"
        event.hold_until = None
        event.next_attempt_at = now
