"""From an answered call to a finished record: the one place that runs a
:class:`~flireo.engine.session.CallSession` for a stored call.

Whatever carries the audio (SIP/RTP, a test's memory transport, later carrier
websockets) hands the runner the call id and an
:class:`~flireo.engine.transport.AudioTransport`. The runner

1. loads the call, its agent and number, the webhook secret and the vendor keys
   (BYOK first, then the platform's), and builds the session's providers;
2. registers the call on the bus so ``POST /calls/{id}/control`` reaches it;
3. moves the record to ``in-progress`` (``status-update`` webhook) and marks it
   owned by this node, in one transaction, so a restart can clean up after it;
4. runs the conversation and ends the record exactly once through
   :meth:`CallLifecycle.finish` (transcript, usage, end-of-call report), also
   when a vendor has no key, the config is broken, or the task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.bus.base import ControlAck, Registration
from flireo.domain.usage import VendorUsage
from flireo.engine import ended_reasons
from flireo.engine.config import SessionConfig
from flireo.engine.control import CallNotActive, ControlRateLimited
from flireo.engine.ended_reasons import Stage, pipeline_error
from flireo.engine.events import EventSink
from flireo.engine.outcome import CallOutcome
from flireo.engine.session import CallSession
from flireo.engine.transport import AudioTransport
from flireo.errors import ProviderError
from flireo.providers import registry
from flireo.providers.llm.base import LanguageModel
from flireo.providers.realtime.base import RealtimeModel
from flireo.providers.stt.base import SpeechToText
from flireo.providers.tts.base import TextToSpeech
from flireo.recordings.capture import CallRecorder
from flireo.recordings.encode import RecordingFormat
from flireo.recordings.service import RECORDING_FINISH_BOUND_S, recording_format_for
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.container import Services
from flireo.services.credentials import Credentials, credentials_for, pipeline_providers
from flireo.services.inbound import CallRows
from flireo.services.live_events import BusEventSink
from flireo.services.session_config import build_session_config, effective_configs
from flireo.store.tables import Agent, Call, PhoneNumber

log = structlog.get_logger(__name__)

#: how long finishing the record may take once the conversation is over
_FINISH_DEADLINE_S = 30.0
#: our hang-up before a recorded call's files are finished (speech plays out first)
_HANGUP_DEADLINE_S = 15.0


@dataclass
class Pipeline:
    """The providers one call talks to (cascade, or realtime alone)."""

    stt: SpeechToText | None = None
    llm: LanguageModel | None = None
    tts: TextToSpeech | None = None
    realtime: RealtimeModel | None = None


class CallSetupError(Exception):
    """The call cannot run: ``ended_reason`` says why (no key, broken config...)."""

    def __init__(self, ended_reason: str, error: str) -> None:
        super().__init__(error)
        self.ended_reason = ended_reason
        self.error = error


@dataclass
class PreparedCall:
    call_id: str
    org_id: str
    config: SessionConfig
    pipeline: Pipeline
    #: the agent as read for this call (its webhook settings for the ``in-progress`` update)
    agent: Agent | None = None
    #: recorded in this format from the answer on; None: not recorded
    recording_format: RecordingFormat | None = None


@dataclass(frozen=True, slots=True)
class _Recording:
    org_id: str
    transport: AudioTransport
    recorder: CallRecorder
    #: wall time of the answer (the recording's first sample; its storage key's month)
    started_at: datetime


def usage_of(outcome: CallOutcome) -> VendorUsage:
    u = outcome.usage
    return VendorUsage(
        stt_seconds=round(u.stt_seconds + u.realtime_input_seconds, 3),
        llm_prompt_tokens=u.llm_prompt_tokens,
        llm_completion_tokens=u.llm_completion_tokens,
        tts_characters=u.tts_characters,
    )


def completion_of(outcome: CallOutcome) -> CallCompletion:
    metrics: dict[str, Any] = outcome.metrics()
    metrics["usage"] = outcome.usage.to_dict()
    if outcome.transferred_to:
        metrics["transferred_to"] = outcome.transferred_to
    return CallCompletion(
        status="ended",
        ended_reason=outcome.ended_reason,
        error=outcome.error,
        messages=outcome.messages,
        transcript=outcome.transcript,
        summary=outcome.summary,
        metrics=metrics,
        usage=usage_of(outcome),
    )


def ack_for(exc: BaseException) -> ControlAck:
    """A refused control command as the bus acknowledgement the API turns into HTTP."""
    if isinstance(exc, ControlRateLimited):
        return ControlAck(
            ok=False, code="rate_limit_exceeded", message=str(exc), retry_after=exc.retry_after
        )
    if isinstance(exc, CallNotActive):
        return ControlAck(ok=False, code="call_not_active", message=str(exc))
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
        return ControlAck(ok=False, code="invalid_request", message=str(first.get("msg")))
    return ControlAck(ok=False, code="invalid_request", message=str(exc))


class CallRunner:
    def __init__(
        self, services: Services, lifecycle: CallLifecycle, *, node_id: str | None = None
    ) -> None:
        self.svc = services
        self.lifecycle = lifecycle
        self.node_id = node_id or services.settings.node_id
        #: live sessions of this process by call id
        self.sessions: dict[str, CallSession] = {}

    # --- set-up ---------------------------------------------------------------------
    async def prepare(self, call_id: str, *, rows: CallRows | None = None) -> PreparedCall:
        """Everything the call needs before audio flows; raises :class:`CallSetupError`.

        Telephony calls this before answering, so a call that cannot run is
        refused cleanly instead of being answered into silence. ``rows``: the
        call, agent and number its admission just read and wrote (not read again).
        """
        svc = self.svc
        if rows is not None and rows.call.id == call_id:
            call, agent, number = rows.call, rows.agent, rows.number
            configs = effective_configs(call, agent)
            known = rows.credentials
            if known is not None and known.fits(
                pipeline_providers(configs), agent.webhook_secret_id
            ):  # read with the number moments ago: no session at all
                return self._prepared(call, agent, number, configs, known)
        async with svc.db.read() as s:
            agent_row: Agent | None
            number_row: PhoneNumber | None
            if rows is not None and rows.call.id == call_id:
                call, agent_row, number_row = rows.call, rows.agent, rows.number
            else:
                call, agent_row, number_row = await self._rows(s, call_id)
            if agent_row is None or agent_row.org_id != call.org_id:
                raise CallSetupError("assistant-not-found", "the call has no agent")
            configs = effective_configs(call, agent_row)
            # the vendors' keys and the webhook secret: one statement
            credentials = await credentials_for(
                s,
                svc.vault,
                svc.settings,
                call.org_id,
                configs,
                agent_row.webhook_secret_id,
            )
        return self._prepared(call, agent_row, number_row, configs, credentials)

    def _prepared(
        self,
        call: Call,
        agent: Agent,
        number: PhoneNumber | None,
        configs: dict[str, dict[str, Any]],
        credentials: Credentials,
    ) -> PreparedCall:
        if agent.org_id != call.org_id:
            raise CallSetupError("assistant-not-found", "the call has no agent")
        try:
            config = build_session_config(
                call,
                agent,
                number=number,
                webhook_secret=credentials.webhook_secret,
                configs=configs,
            )
        except (ValidationError, ValueError, TypeError) as exc:
            raise CallSetupError(
                "assistant-not-valid", f"the agent's configuration is invalid: {exc}"
            ) from exc
        call_id, org_id = call.id, call.org_id
        recording_format = recording_format_for(call, agent)
        keys = credentials.keys
        pipeline = self._pipeline(configs, keys)
        return PreparedCall(
            call_id=call_id,
            org_id=org_id,
            config=config,
            pipeline=pipeline,
            agent=agent,
            recording_format=recording_format,
        )

    @staticmethod
    async def _rows(s: AsyncSession, call_id: str) -> tuple[Call, Agent | None, PhoneNumber | None]:
        call = await s.get(Call, call_id)
        if call is None:
            raise CallSetupError(ended_reasons.UNKNOWN_ERROR, f"call {call_id} not found")
        agent = await s.get(Agent, call.agent_id) if call.agent_id else None
        number = await s.get(PhoneNumber, call.number_id) if call.number_id else None
        return call, agent, number

    def _pipeline(
        self, configs: Mapping[str, dict[str, Any]], keys: Mapping[str, str | None]
    ) -> Pipeline:
        settings, http = self.svc.settings, self.svc.http
        llm_config = configs["llm_config"]

        def build(stage: Stage, make: Any) -> Any:
            try:
                return make()
            except ProviderError as exc:
                raise CallSetupError(pipeline_error(stage, exc), str(exc)) from exc

        if registry.is_realtime(llm_config):
            return Pipeline(
                realtime=build(
                    "realtime",
                    lambda: registry.build_realtime(
                        llm_config, api_key=keys["llm_config"], settings=settings
                    ),
                )
            )
        return Pipeline(
            stt=build(
                "transcriber",
                lambda: registry.build_stt(
                    configs["stt_config"],
                    api_key=keys["stt_config"],
                    settings=settings,
                    http=http,
                ),
            ),
            llm=build(
                "llm",
                lambda: registry.build_llm(
                    llm_config, api_key=keys["llm_config"], settings=settings, http=http
                ),
            ),
            tts=build(
                "voice",
                lambda: registry.build_tts(
                    configs["tts_config"],
                    api_key=keys["tts_config"],
                    settings=settings,
                    http=http,
                ),
            ),
        )

    # --- the call -------------------------------------------------------------------
    async def run(
        self,
        call_id: str,
        transport: AudioTransport,
        *,
        prepared: PreparedCall | None = None,
        events: EventSink | None = None,
    ) -> CallOutcome | None:
        """Run the answered call to its end; None when it could not start (the
        record is then finished with the reason and the transport hung up)."""
        try:
            prepared = prepared or await self.prepare(call_id)
        except CallSetupError as exc:
            log.warning("call cannot start", call_id=call_id, reason=exc.ended_reason)
            await self.fail(call_id, exc.ended_reason, exc.error, answered=True)
            with contextlib.suppress(Exception):
                await transport.hangup()
            return None
        p = prepared.pipeline
        session = CallSession(
            prepared.config,
            transport=transport,
            clock=self.svc.clock,
            http=self.svc.http,
            # transcript lines, tool calls and control results for live watchers (SSE)
            events=BusEventSink(self.svc.bus, prepared.org_id, call_id, inner=events),
            stt=p.stt,
            llm=p.llm,
            tts=p.tts,
            realtime=p.realtime,
            allow_private_urls=self.svc.settings.allow_private_webhooks,
            control_limit=self.svc.settings.control_rate_limit_per_minute,
        )
        registration: Registration | None = None
        self.sessions[call_id] = session
        recording = self._start_recording(prepared, transport)
        try:
            registration = await self.svc.bus.register_call(
                call_id, lambda cmd: self._control(session, cmd)
            )
            # owned by this node (restart recovery ends only its own calls), now live
            await self.lifecycle.transition(
                call_id,
                "in-progress",
                owner_node=self.node_id,
                agent=prepared.agent,
                number=prepared.config.call.phone_number_name,
            )
            outcome = await session.run()
        except BaseException as exc:
            # cancelled (shutdown) or a bug before/around the session: still end once
            partial = session.outcome
            completion = (
                completion_of(partial)
                if partial is not None
                else CallCompletion(
                    status="ended",
                    ended_reason=ended_reasons.CALL_CANCELLED
                    if isinstance(exc, asyncio.CancelledError)
                    else ended_reasons.UNKNOWN_ERROR,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            await self._finish_shielded(call_id, completion, recording)
            raise
        else:
            await self._finish_shielded(call_id, completion_of(outcome), recording)
            return outcome
        finally:
            self.sessions.pop(call_id, None)
            if registration is not None:
                with contextlib.suppress(Exception):
                    await registration.close()
            with contextlib.suppress(Exception):
                await transport.hangup()

    async def fail(self, call_id: str, ended_reason: str, error: str, *, answered: bool) -> bool:
        """End a call that never had a conversation (no key, broken config, dial failure)."""
        status: Literal["ended", "failed"] = "ended" if answered else "failed"
        if answered:
            await self.lifecycle.transition(call_id, "in-progress")
        return await self.lifecycle.finish(
            call_id, CallCompletion(status=status, ended_reason=ended_reason, error=error)
        )

    def _start_recording(
        self, prepared: PreparedCall, transport: AudioTransport
    ) -> _Recording | None:
        """From the answer on, when recording is on for this call (agent, overrides)."""
        if prepared.recording_format is None:
            return None
        try:
            recorder = self.svc.recordings.recorder(prepared.call_id, prepared.recording_format)
            transport.attach_recorder(recorder)
        except Exception:  # a recording must never keep a call from running
            log.exception("recording could not start", call_id=prepared.call_id)
            return None
        return _Recording(prepared.org_id, transport, recorder, self.svc.clock.now())

    async def _end(
        self, call_id: str, completion: CallCompletion, recording: _Recording | None
    ) -> None:
        """Store the recording (or queue it for another try), then end the record once."""
        if recording is not None:
            # hang up first: queued speech plays out and the media closes, so the
            # file runs from the answer to the hang-up (idempotent; nothing once bridged)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(recording.transport.hangup(), _HANGUP_DEADLINE_S)
            try:
                completion.recording = await self.svc.recordings.keep(
                    recording.org_id, call_id, recording.recorder, recording.started_at
                )
            except Exception:
                log.exception("recording could not be kept", call_id=call_id)
        ended = await self.lifecycle.finish(call_id, completion)
        if not ended and completion.recording is not None:
            await self.svc.recordings.forget(completion.recording)

    async def _finish_shielded(
        self, call_id: str, completion: CallCompletion, recording: _Recording | None = None
    ) -> None:
        task = asyncio.ensure_future(self._end(call_id, completion, recording))
        # a recording through a bridged transfer is finished when the bridge ends
        deadline = _FINISH_DEADLINE_S + (RECORDING_FINISH_BOUND_S if recording else 0.0)
        try:
            await asyncio.wait_for(asyncio.shield(task), deadline)
        except asyncio.CancelledError:
            # the caller is being cancelled too: let the write complete anyway
            await asyncio.wait([task], timeout=_FINISH_DEADLINE_S)
            raise
        except Exception:
            log.exception("finishing the call record failed", call_id=call_id)

    async def _control(self, session: CallSession, command: dict[str, Any]) -> ControlAck:
        try:
            await session.control(command)
        except (ControlRateLimited, CallNotActive, ValidationError) as exc:
            return ack_for(exc)
        return ControlAck(ok=True)
