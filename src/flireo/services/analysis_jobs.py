"""Running post-call analysis from the ``analysis_jobs`` queue.

A finished call with an analysis plan gets a job (in the transaction that ends
the call). This worker claims due jobs with a lease, runs the analysis with
the agent's LLM, stores the results on the call and releases the held
end-of-call report. Failures are retried with backoff, then recorded; they
never block the report, which goes out at its hold deadline anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import select

from flireo.analysis import analyze_call
from flireo.clock import Clock
from flireo.errors import ProviderError
from flireo.providers.llm.base import LanguageModel
from flireo.providers.registry import build_llm, is_realtime
from flireo.services.call_lifecycle import analysis_plan
from flireo.services.credentials import resolve_key
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.tables import Agent, AnalysisJob, Call
from flireo.store.vault import Vault
from flireo.webhooks import outbox

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 3
RETRY_SECONDS = (10.0, 60.0)
#: realtime voice agents are analysed with the same vendor's text model
REALTIME_ANALYSIS_LLM = {"provider": "xai", "model": "grok-4-1-fast-non-reasoning"}


class Outcome(Protocol):
    summary: str | None
    skipped_reason: str | None
    errors: dict[str, str]

    def analysis(self) -> dict[str, Any]: ...


Analyze = Callable[..., Awaitable[Outcome]]


class AnalysisWorker:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        settings: Settings,
        clock: Clock,
        http: httpx.AsyncClient,
        *,
        node_id: str,
        on_webhook: Callable[[], None] = lambda: None,
        analyze: Analyze | None = None,
        poll_seconds: float = 1.0,
        lease_seconds: float = 300.0,
    ) -> None:
        self.db, self.vault, self.settings, self.clock, self.http = db, vault, settings, clock, http
        self.node_id, self._on_webhook = node_id, on_webhook
        self._analyze = analyze
        self.poll_seconds, self.lease_seconds = poll_seconds, lease_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="analysis-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("analysis round failed")
                done = 0
            if done:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_once(self) -> int:
        job_id = await self._claim()
        if job_id is None:
            return 0
        await self._run(job_id)
        return 1

    async def _claim(self) -> str | None:
        now = self.clock.now()
        stmt = (
            select(AnalysisJob)
            .where(
                AnalysisJob.status.in_(("pending", "running")),
                AnalysisJob.next_attempt_at <= now,
                (AnalysisJob.lease_expires_at.is_(None)) | (AnalysisJob.lease_expires_at < now),
            )
            .order_by(AnalysisJob.next_attempt_at)
            .limit(1)
        )
        async with self.db.transaction() as s:
            if self.db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            job = (await s.execute(stmt)).scalar_one_or_none()
            if job is None:
                return None
            job.status = "running"
            job.attempts += 1
            job.lease_owner = self.node_id
            job.lease_expires_at = now + timedelta(seconds=self.lease_seconds)
            return job.call_id

    async def _llm(self, call: Call, agent: Agent | None) -> LanguageModel:
        config = (call.overrides or {}).get("llm_config") or (agent.llm_config if agent else {})
        if is_realtime(config):
            config = REALTIME_ANALYSIS_LLM
        config = {
            "provider": self.settings.default_llm_provider,
            "model": self.settings.default_llm_model,
            **{k: v for k, v in config.items() if v},
        }
        async with self.db.read() as s:
            key = await resolve_key(
                s, self.vault, self.settings, call.org_id, str(config.get("provider", ""))
            )
        return build_llm(config, api_key=key, settings=self.settings, http=self.http)

    async def _run(self, call_id: str) -> None:
        async with self.db.read() as s:
            call = await s.get(Call, call_id)
            agent = await s.get(Agent, call.agent_id) if call and call.agent_id else None
        if call is None:
            await self._settle(call_id, status="failed", error="call record is gone")
            return
        try:
            llm = await self._llm(call, agent)
            analyze = self._analyze or analyze_call
            outcome = await analyze(
                analysis_plan(call, agent),
                messages=call.messages or [],
                ended_reason=call.ended_reason,
                llm=llm,
            )
        except ProviderError as exc:
            await self._retry_or_fail(call_id, f"{exc.provider}: {exc.message}", exc.retryable)
            return
        except Exception as exc:  # a bug must not wedge the queue
            log.exception("analysis crashed", call_id=call_id)
            await self._retry_or_fail(call_id, repr(exc)[:300], True)
            return
        result = outcome.analysis()
        status = (
            "skipped"
            if outcome.skipped_reason
            else ("failed" if outcome.errors and not result else "done")
        )
        error = "; ".join(f"{k}: {v}" for k, v in outcome.errors.items()) or outcome.skipped_reason
        await self._settle(
            call_id, status=status, error=error, summary=outcome.summary, result=result or None
        )

    async def _retry_or_fail(self, call_id: str, error: str, retryable: bool) -> None:
        now = self.clock.now()
        async with self.db.transaction() as s:
            job = await s.get(AnalysisJob, call_id)
            if job is None:
                return
            if retryable and job.attempts < MAX_ATTEMPTS:
                delay = RETRY_SECONDS[min(job.attempts - 1, len(RETRY_SECONDS) - 1)]
                job.status, job.error = "pending", error
                job.next_attempt_at = now + timedelta(seconds=delay)
                job.lease_owner = job.lease_expires_at = None
                return
        await self._settle(call_id, status="failed", error=error)

    async def _settle(
        self,
        call_id: str,
        *,
        status: str,
        error: str | None,
        summary: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock.now()
        async with self.db.transaction() as s:
            job = await s.get(AnalysisJob, call_id)
            if job is not None:
                job.status = "done" if status in ("done", "skipped") else "failed"
                job.error = error
                job.lease_owner = job.lease_expires_at = None
            call = await s.get(Call, call_id)
            if call is not None:
                call.analysis_status = status
                call.analysis_error = error if status != "done" else None
                if summary:
                    call.summary = summary
                if result is not None:
                    call.analysis_result = result
            await outbox.release(s, call_id, "end-of-call-report", now=now)
        self._on_webhook()
