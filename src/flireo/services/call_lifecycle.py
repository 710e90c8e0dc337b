"""How a call record moves: status changes with their webhooks, and the one
place a call ends (final status, transcript, usage, end-of-call report).

Each step is one transaction, so a webhook exists exactly when the change it
reports was committed, and a call is finished exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal

from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.billing.ledger import record_usage
from flireo.bus.base import Bus
from flireo.clock import Clock, utcnow
from flireo.domain.calls import FINAL_STATUSES
from flireo.domain.usage import VendorUsage
from flireo.recordings.service import KeptRecording, note_recording
from flireo.services.calls import ALLOWED_TRANSITIONS, set_status
from flireo.services.live_events import publish_status
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.tables import Agent, AnalysisJob, Call, PhoneNumber
from flireo.webhooks import outbox, payloads


@dataclass
class CallCompletion:
    """What the conversation (or the dialer) reports when a call is over."""

    status: Literal["ended", "failed", "rejected"]
    ended_reason: str
    error: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    transcript: str | None = None
    #: set directly when no analysis is needed (e.g. "Voicemail detected. ...")
    summary: str | None = None
    metrics: dict[str, Any] | None = None
    usage: VendorUsage = field(default_factory=VendorUsage)
    #: the call's recording, stored (or queued for another try) before the call ends
    recording: KeptRecording | None = None


#: Core statements on the calls table
_CALLS: Final[Table] = Call.__table__  # type: ignore[assignment]
#: what a status-update needs of the call, returned by the transition's UPDATE
_WEBHOOK_FIELDS = tuple(
    _CALLS.c[name]
    for name in (
        "org_id",
        "agent_id",
        "number_id",
        "direction",
        "overrides",
        "assistant_phone",
        "caller_phone",
        "ended_reason",
        "started_at",
        "owner_node",
    )
)


#: the call (locked until the commit), its agent and its number's name: built once
_FINISH_QUERY: Final[Select[Call, Agent | None, str | None]] = (
    select(Call, Agent, PhoneNumber.name)
    .outerjoin(Agent, Agent.id == Call.agent_id)
    .outerjoin(PhoneNumber, PhoneNumber.id == Call.number_id)
    .where(Call.id == bindparam("call_id"))
    .with_for_update(of=Call)
)
#: a transition's UPDATE by (status, with owner_node), built once each
_TRANSITIONS: dict[tuple[str, bool], Any] = {}


def _transition_statement(status: str, with_owner: bool) -> Any:
    """``UPDATE calls SET status, [started_at], [owner_node], updated_at WHERE id AND
    status IN (the statuses ``status`` may come from) RETURNING`` the webhook's fields."""
    key = (status, with_owner)
    statement = _TRANSITIONS.get(key)
    if statement is None:
        sources = [old for old, targets in ALLOWED_TRANSITIONS.items() if status in targets]
        values: dict[str, Any] = {"status": status, "updated_at": bindparam("at")}
        if status == "in-progress":
            values["started_at"] = func.coalesce(_CALLS.c.started_at, bindparam("now"))
        if with_owner:
            values["owner_node"] = bindparam("owner")
        statement = (
            update(_CALLS)
            .where(_CALLS.c.id == bindparam("call_id"), _CALLS.c.status.in_(sources))
            .values(values)
            .returning(*_WEBHOOK_FIELDS)
        )
        _TRANSITIONS[key] = statement
    return statement


def analysis_plan(call: Call, agent: Agent | None) -> dict[str, Any] | None:
    """The plan for this call: a per-call override (assistant-request) or the agent's."""
    override = (call.overrides or {}).get("analysisPlan")
    if isinstance(override, dict) and override:
        return override
    return agent.analysis_plan if agent is not None and agent.analysis_plan else None


class CallLifecycle:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        on_webhook: Callable[[], None] | None = None,
        on_analysis: Callable[[], None] | None = None,
        bus: Bus | None = None,
    ) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        #: where committed status changes are published for live watchers (SSE)
        self.bus = bus
        self._on_webhook = on_webhook or (lambda: None)
        self._on_analysis = on_analysis or (lambda: None)

    async def open(
        self,
        call: Call,
        status: str,
        *,
        agent: Agent | None,
        number: outbox.KnownName = outbox.LOAD,
    ) -> None:
        """Store a new call record and move it on to ``status`` (e.g. ``connecting`` →
        ``ringing``) with that status-update, in one transaction. ``agent`` is the
        call's agent as the caller just read it (its webhook settings), ``number``
        the name of its number (read here when not given)."""
        if status in FINAL_STATUSES:
            raise ValueError("use finish() to end a call")
        now = self.clock.now()
        queued = None
        async with self.db.transaction() as s:
            moved = set_status(call, status, now=now)  # inserted at ``status``: one statement
            s.add(call)
            if moved:
                queued = await outbox.enqueue_status(
                    s, call, status, now=now, agent=agent, number=number
                )
            org_id, call_id = call.org_id, call.id
        if queued is not None:
            self._on_webhook()
        if moved:
            await publish_status(self.bus, org_id, call_id, status)

    async def transition(
        self,
        call_id: str,
        status: str,
        *,
        error: str | None = None,
        owner_node: str | None = None,
        agent: outbox.KnownAgent = outbox.LOAD,
        number: outbox.KnownName = outbox.LOAD,
    ) -> bool:
        """A non-final status change (``ringing``, ``in-progress``) and its webhook;
        ``owner_node`` also marks which node runs the call (same transaction).
        ``agent``, ``number``: the call's agent and its number's name as read moments
        ago (else they are read here).

        The change is one Core ``UPDATE ... WHERE status IN (the statuses it may
        come from) RETURNING`` the fields the webhook needs: no row is loaded
        first, and a call that moved on meanwhile is simply not matched."""
        if status in FINAL_STATUSES:
            raise ValueError("use finish() to end a call")
        now = self.clock.now()
        moved = _transition_statement(status, owner_node is not None)
        params: dict[str, Any] = {"call_id": call_id, "at": utcnow()}
        if status == "in-progress":
            params["now"] = now
        if owner_node is not None:
            params["owner"] = owner_node
        async with self.db.transaction() as s:
            row = (await s.execute(moved, params)).first()
            if row is None:
                if owner_node is not None:  # not moved, but the node still owns it
                    await s.execute(
                        update(_CALLS)
                        .where(_CALLS.c.id == call_id)
                        .values(owner_node=owner_node, updated_at=utcnow())
                    )
                return False
            call = Call(id=call_id, status=status, **row._asdict())
            queued = await outbox.enqueue_status(
                s, call, status, now=now, error=error, agent=agent, number=number
            )
            org_id = call.org_id
        if queued is not None:
            self._on_webhook()
        await publish_status(self.bus, org_id, call_id, status)
        return True

    async def finish(self, call_id: str, completion: CallCompletion) -> bool:
        """End the call once; False when it had already ended (nothing changes).

        One statement reads the call (locked), its agent and its number's name;
        the usage log, the debit and the outbox rows are Core inserts; the call's
        changes go out as one UPDATE at the commit."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            found = (await s.execute(_FINISH_QUERY, {"call_id": call_id})).first()
            if found is None:
                return False
            # held for the whole transaction: the session's identity map keeps rows only
            # while someone refers to them, and the outbox and the report both need it
            call, agent, number_name = found
            if not set_status(
                call,
                completion.status,
                now=now,
                ended_reason=completion.ended_reason,
                error=completion.error,
            ):
                return False
            call.messages = completion.messages
            call.transcript = completion.transcript
            call.metrics = completion.metrics
            if completion.summary is not None:
                call.summary = completion.summary
            if completion.recording is not None:
                note_recording(
                    s,
                    call,
                    completion.recording,
                    node_id=self.settings.node_id,
                    now=now,
                    retry_scale=self.settings.recording_retry_scale,
                )
            with s.no_autoflush:  # the call's changes go out as one UPDATE, at the commit
                await record_usage(s, call, completion.usage, self.settings.price_per_minute)
                status_event = await outbox.enqueue_status(
                    s,
                    call,
                    completion.status,
                    now=now,
                    error=completion.error,
                    agent=agent,
                    number=number_name,
                )
                wants_analysis, report = await self._queue_report(
                    s, call, agent, number_name, completion
                )
            org_id = call.org_id
        if status_event is not None or report:
            self._on_webhook()
        if wants_analysis:
            self._on_analysis()
        await publish_status(
            self.bus, org_id, call_id, completion.status, ended_reason=completion.ended_reason
        )
        return True

    async def _queue_report(
        self,
        s: AsyncSession,
        call: Call,
        agent: Agent | None,
        number_name: str | None,
        completion: CallCompletion,
    ) -> tuple[bool, bool]:
        """The end-of-call report: now, or held until the analysis is done (at most
        ``analysis_max_wait_seconds``). Returns whether analysis was queued and
        whether the report went into the outbox (the agent takes it)."""
        now = self.clock.now()
        plan = analysis_plan(call, agent)
        answered = call.started_at is not None and bool(completion.messages)
        if plan is None or not answered or completion.summary is not None:
            call.analysis_status = "skipped" if plan is not None else None
            queued = await outbox.enqueue(
                s,
                call,
                "end-of-call-report",
                now=now,
                render=lambda name: payloads.end_of_call_report(
                    call, number_name=name, now=now, settings=self.settings
                ),
                agent=agent,
                number=number_name,
            )
            return False, queued is not None
        call.analysis_status = "pending"
        s.add(
            AnalysisJob(call_id=call.id, org_id=call.org_id, status="pending", next_attempt_at=now)
        )
        hold = now + timedelta(seconds=self.settings.analysis_max_wait_seconds)
        queued = await outbox.enqueue(
            s, call, "end-of-call-report", now=now, hold_until=hold, agent=agent
        )
        return True, queued is not None
