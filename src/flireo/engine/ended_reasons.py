"""Why a conversation ended: the ``ended_reason`` strings (Vapi-compatible names).

==========================================  ==========================================
``customer-ended-call``                     the caller hung up (BYE, socket closed, media
                                            ended); a transport may report its own reason
``assistant-ended-call``                    the LLM called the ``endCall`` tool
``assistant-said-end-call-phrase``          the agent said one of ``end_call_phrases``
``assistant-ended-call-with-message``       control ``say`` with ``end_after: true``
``manually-ended``                          control ``end-call``
``assistant-forwarded-call``                a transfer (tool or control) succeeded
``exceeded-max-duration``                   ``max_duration_seconds`` reached
``silence-timed-out``                       silence handling gave up on the caller
``voicemail``                               outbound call reached a voicemail box
``call-cancelled``                          the task running the call was cancelled
                                            (shutdown); the outcome is still recorded
``pipeline-error-<provider>-<stage>-failed``            a vendor failed
``pipeline-error-<provider>-<stage>-unauthorized``      the vendor refused the key (401/403)
``pipeline-error-<provider>-<stage>-missing-api-key``   no key (BYOK or platform)
``unknown-error``                           a bug in our code (logged with its traceback)
==========================================  ==========================================

``<stage>`` is ``transcriber`` (STT), ``llm``, ``voice`` (TTS) or ``realtime``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

from flireo.errors import MissingCredentials, ProviderError

Stage = Literal["transcriber", "llm", "voice", "realtime"]

CUSTOMER_ENDED_CALL: Final = "customer-ended-call"
ASSISTANT_ENDED_CALL: Final = "assistant-ended-call"
ASSISTANT_SAID_END_CALL_PHRASE: Final = "assistant-said-end-call-phrase"
ASSISTANT_ENDED_CALL_WITH_MESSAGE: Final = "assistant-ended-call-with-message"
MANUALLY_ENDED: Final = "manually-ended"
ASSISTANT_FORWARDED_CALL: Final = "assistant-forwarded-call"
EXCEEDED_MAX_DURATION: Final = "exceeded-max-duration"
SILENCE_TIMED_OUT: Final = "silence-timed-out"
VOICEMAIL: Final = "voicemail"
CALL_CANCELLED: Final = "call-cancelled"
UNKNOWN_ERROR: Final = "unknown-error"

#: every fixed reason (pipeline errors are built by :func:`pipeline_error`)
FIXED_REASONS: Final = (
    CUSTOMER_ENDED_CALL,
    ASSISTANT_ENDED_CALL,
    ASSISTANT_SAID_END_CALL_PHRASE,
    ASSISTANT_ENDED_CALL_WITH_MESSAGE,
    MANUALLY_ENDED,
    ASSISTANT_FORWARDED_CALL,
    EXCEEDED_MAX_DURATION,
    SILENCE_TIMED_OUT,
    VOICEMAIL,
    CALL_CANCELLED,
    UNKNOWN_ERROR,
)

_SLUG = re.compile(r"[^a-z0-9]+")


def pipeline_error(stage: Stage, error: ProviderError) -> str:
    """``pipeline-error-<provider>-<stage>-<what>`` for a vendor failure."""
    provider = _SLUG.sub("-", error.provider.lower()).strip("-") or "unknown"
    if isinstance(error, MissingCredentials):
        what = "missing-api-key"
    elif error.status in (401, 403):
        what = "unauthorized"
    else:
        what = "failed"
    return f"pipeline-error-{provider}-{stage}-{what}"


def is_error(reason: str) -> bool:
    """True for endings caused by a failure (the call reports ``ended-with-error``)."""
    return reason.startswith("pipeline-error-") or reason == UNKNOWN_ERROR


class PipelineFailure(Exception):
    """A vendor failed at one stage of the pipeline; ends the call with its reason."""

    def __init__(self, stage: Stage, error: ProviderError) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error

    @property
    def ended_reason(self) -> str:
        return pipeline_error(self.stage, self.error)


@contextmanager
def stage(name: Stage) -> Iterator[None]:
    """Tag a :class:`ProviderError` raised inside with the pipeline stage it came from."""
    try:
        yield
    except ProviderError as exc:
        raise PipelineFailure(name, exc) from exc
