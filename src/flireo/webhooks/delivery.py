"""Delivering the outbox: at least once, in order per call, with backoff.

Retry schedule (after the first, immediate attempt): 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 10 h, each with ±10 % jitter, multiplied by
``FLIREO_WEBHOOK_RETRY_SCALE``; a ``Retry-After`` answer replaces the next delay.
A ``410 Gone`` disables the agent's endpoint. An event is claimed with a lease,
so a crashed process's in-flight deliveries are picked up again (with the same
``webhook-id``) once the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from flireo.clock import Clock
from flireo.errors import NotFound
from flireo.retry_after import retry_after_seconds
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.tables import Agent, Call, WebhookAttempt, WebhookEvent
from flireo.store.vault import Vault
from flireo.webhooks import payloads
from flireo.webhooks.outbox import number_name
from flireo.webhooks.signing import webhook_headers
from flireo.webhooks.ssrf import UnsafeUrl, check_url

log = structlog.get_logger(__name__)

#: seconds before attempt n+1, n = attempts already made (the first is immediate)
RETRY_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_SCHEDULE)
_RESPONSE_EXCERPT = 500


def next_delay(
    attempts_made: int, *, scale: float = 1.0, rng: random.Random | None = None
) -> float | None:
    """Seconds until the next attempt, or None when every attempt is used."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[attempts_made] * scale
    jitter = (rng or random).uniform(-0.1, 0.1) * base
    return max(0.0, base + jitter)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    url: str
    event_type: str
    body: bytes
    secret: str | None
    attempt: int


class WebhookDeliverer:
    def __init__(
        self,
        db: Database,
        http: httpx.AsyncClient,
        vault: Vault,
        settings: Settings,
        clock: Clock,
        *,
        node_id: str,
        batch: int = 32,
        concurrency: int = 16,
        poll_seconds: float = 1.0,
        lease_seconds: float = 60.0,
    ) -> None:
        self.db, self.http, self.vault = db, http, vault
        self.settings, self.clock, self.node_id = settings, clock, node_id
        self.batch, self.poll_seconds, self.lease_seconds = batch, poll_seconds, lease_seconds
        self._sem = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: set between rounds; ``stop(grace_s=...)`` lets a round in flight finish
        self._between = asyncio.Event()
        self._between.set()
        self._stopping = False

    def kick(self) -> None:
        """Look for due events now (called after an enqueue in this process)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhook-deliverer")

    async def stop(self, *, grace_s: float = 0.0) -> None:
        """Stop; ``grace_s``: first let the deliveries in flight finish (at most that
        long), so their leases do not keep another worker from them after we exit."""
        self._stopping = True
        if self._task is not None and grace_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._between.wait(), grace_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            self._between.clear()
            try:
                busy = await self.run_once()
            except Exception:  # the loop must survive a database hiccup
                log.exception("webhook delivery round failed")
                busy = 0
            finally:
                self._between.set()
            if busy:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_once(self) -> int:
        """Claim the due events and deliver them; returns how many were attempted."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    async def _claim(self) -> list[_Claimed]:
        now = self.clock.now()
        earlier = aliased(WebhookEvent)
        blocked = exists().where(
            and_(
                earlier.call_id == WebhookEvent.call_id,
                earlier.seq < WebhookEvent.seq,
                earlier.status.in_(("pending", "held")),
            )
        )
        stmt = (
            select(WebhookEvent)
            .where(
                WebhookEvent.status.in_(("pending", "held")),
                WebhookEvent.next_attempt_at <= now,
                (WebhookEvent.lease_expires_at.is_(None)) | (WebhookEvent.lease_expires_at < now),
                ~blocked,
            )
            .order_by(WebhookEvent.next_attempt_at)
            .limit(self.batch)
        )
        claimed: list[_Claimed] = []
        async with self.db.transaction() as s:
            if self.db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=WebhookEvent)
            for event in (await s.execute(stmt)).scalars().all():
                call = await s.get(Call, event.call_id)
                if event.payload is None:
                    if call is None:
                        event.status, event.last_error = "failed", "call record is gone"
                        continue
                    renderer = payloads.end_of_call_report
                    event.payload = renderer(
                        call,
                        number_name=await number_name(s, call),
                        now=now,
                        settings=self.settings,
                    )
                event.status = "pending"
                event.hold_until = None
                event.lease_owner = self.node_id
                event.lease_expires_at = now + timedelta(seconds=self.lease_seconds)
                agent = await s.get(Agent, event.agent_id) if event.agent_id else None
                secret = (
                    await self.vault.reveal(s, agent.org_id, agent.webhook_secret_id)
                    if agent is not None and agent.webhook_secret_id
                    else None
                )
                body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)
                claimed.append(
                    _Claimed(
                        event.id,
                        event.url,
                        event.event_type,
                        body.encode(),
                        secret,
                        event.attempts + 1,
                    )
                )
        return claimed

    async def _deliver(self, c: _Claimed) -> None:
        async with self._sem:
            started = self.clock.now()
            t0 = time.monotonic()
            status: int | None = None
            error: str | None = None
            excerpt: str | None = None
            retry_after: float | None = None
            permanent = False
            try:
                await check_url(c.url, allow_private=self.settings.allow_private_webhooks)
                headers = webhook_headers(
                    event=c.event_type,
                    webhook_id=c.id,
                    timestamp=int(started.timestamp()),
                    body=c.body,
                    secret=c.secret,
                )
                response = await self.http.post(
                    c.url,
                    content=c.body,
                    headers=headers,
                    timeout=self.settings.webhook_timeout_seconds,
                )
                status = response.status_code
                excerpt = response.text[:_RESPONSE_EXCERPT]
                retry_after = retry_after_seconds(response.headers.get("retry-after"), started)
            except UnsafeUrl as exc:
                error, permanent = f"refused: {exc}", True
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            duration_ms = int((time.monotonic() - t0) * 1000)
            await self._record(
                c, started, duration_ms, status, error, excerpt, retry_after, permanent
            )

    async def _record(
        self,
        c: _Claimed,
        started: datetime,
        duration_ms: int,
        status: int | None,
        error: str | None,
        excerpt: str | None,
        retry_after: float | None,
        permanent: bool,
    ) -> None:
        now = self.clock.now()
        async with self.db.transaction() as s:
            event = await s.get(WebhookEvent, c.id)
            if event is None:
                return
            s.add(
                WebhookAttempt(
                    event_id=c.id,
                    attempt=c.attempt,
                    started_at=started,
                    duration_ms=duration_ms,
                    status_code=status,
                    error=error,
                    response_excerpt=excerpt,
                )
            )
            event.attempts = c.attempt
            event.last_status_code = status
            event.last_error = error or (None if status and 200 <= status < 300 else excerpt)
            event.lease_owner = None
            event.lease_expires_at = None
            if status is not None and 200 <= status < 300:
                event.status, event.delivered_at = "delivered", now
                return
            if status == 410:
                await self._disable_endpoint(s, event, now)
                return
            delay = (
                None
                if permanent
                else next_delay(c.attempt, scale=self.settings.webhook_retry_scale)
            )
            if delay is None:
                event.status = "failed"
                log.warning("webhook gave up", event_id=c.id, attempts=c.attempt, status=status)
                return
            if retry_after is not None:
                delay = min(retry_after, RETRY_SCHEDULE[-1])
            event.next_attempt_at = now + timedelta(seconds=delay)

    async def _disable_endpoint(self, s: AsyncSession, event: WebhookEvent, now: datetime) -> None:
        event.status = "disabled"
        if event.agent_id:
            agent = await s.get(Agent, event.agent_id)
            if agent is not None and agent.webhook_url == event.url:
                agent.webhook_disabled_at = now
                agent.webhook_disabled_reason = "endpoint answered 410 Gone"
            await s.execute(
                update(WebhookEvent)
                .where(
                    WebhookEvent.agent_id == event.agent_id,
                    WebhookEvent.url == event.url,
                    WebhookEvent.status.in_(("pending", "held")),
                )
                .values(status="disabled")
            )
        log.warning("webhook endpoint disabled (410)", url=event.url, agent_id=event.agent_id)


async def redeliver(
    db: Database, org_id: str, call_id: str, event_id: str, now: datetime
) -> WebhookEvent:
    """Queue one more attempt of an event (manual redelivery), whatever its state."""
    async with db.transaction() as s:
        event = await s.get(WebhookEvent, event_id)
        if event is None or event.org_id != org_id or event.call_id != call_id:
            raise NotFound("Webhook event not found")
        event.status = "pending"
        event.next_attempt_at = now
        event.lease_owner = None
        event.lease_expires_at = None
        event.attempts = min(event.attempts, MAX_ATTEMPTS - 1)
        return event
