"""A call that breaks while it is being set up still ends exactly once.

Every set-up step of a call (the assistant-request and its store write, SDP
negotiation, vendor preparation, RTP ports, the answer) can fail after the
record exists (``ringing`` or ``dialing``). Whatever the exception, the record
is finished here — status ``failed``, an ``ended_reason`` naming the step's
failure, the end-of-call report and a (zero) usage record — and the SIP side is
told what to answer (503 when we are out of media ports, 500 otherwise), so no
call is left ``ringing`` and counted in ``active_calls``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from flireo.domain.calls import DialEndedReason, SetupEndedReason
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.telephony.rtp.ports import PortsExhausted
from flireo.telephony.rtp.session import RtpBindError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SetupFailure:
    ended_reason: str
    #: the SIP final response an unanswered inbound call gets
    sip_status: int
    sip_reason: str


def classify(exc: BaseException) -> SetupFailure:
    """What a set-up exception means for the record and for the caller."""
    if isinstance(exc, asyncio.CancelledError):  # the server is stopping
        return SetupFailure(DialEndedReason.INTERRUPTED, 503, "Service Unavailable")
    if isinstance(exc, PortsExhausted | RtpBindError):
        return SetupFailure(SetupEndedReason.NO_MEDIA_PORT, 503, "Service Unavailable")
    if isinstance(exc, SQLAlchemyError):
        return SetupFailure(SetupEndedReason.STORE, 500, "Server Internal Error")
    return SetupFailure(SetupEndedReason.UNKNOWN, 500, "Server Internal Error")


async def end_failed_setup(
    lifecycle: CallLifecycle, call_id: str, exc: BaseException, *, step: str
) -> SetupFailure:
    """Finish ``call_id`` as failed at ``step`` (once: a finished call is left as is)."""
    failure = classify(exc)
    if failure.ended_reason == SetupEndedReason.UNKNOWN:
        log.error("call set-up failed", call_id=call_id, step=step, exc_info=exc)
    else:
        log.warning("call set-up failed", call_id=call_id, step=step, error=repr(exc))
    error = f"{step}: {type(exc).__name__}: {exc}"[:500]
    try:
        await lifecycle.finish(
            call_id,
            CallCompletion(status="failed", ended_reason=failure.ended_reason, error=error),
        )
    except Exception:  # the store is down for good: restart recovery ends it
        log.exception("could not end the failed call", call_id=call_id, step=step)
    return failure
