"""The seam between ``POST /calls/outbound`` (and campaigns) and telephony.

The API stores the call as ``dialing`` and hands its id to a :class:`Dialer`.
The SIP dialer (``flireo.telephony``) places the call and drives the record
through ``ringing`` → ``in-progress`` → a final status.
"""

from __future__ import annotations

from typing import Protocol

from flireo.clock import Clock
from flireo.domain.calls import DialEndedReason
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.calls import set_status
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.tables import Call


class Dialer(Protocol):
    async def dial(self, call_id: str) -> None:
        """Start dialing the stored call ``call_id`` in the background and return.

        The dialer owns the call from here: it must bring the record to exactly
        one final status, whatever happens.
        """
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class DisabledDialer:
    """For servers running without SIP (``FLIREO_SIP_ENABLED=0``): every outbound
    call fails at once with a clear reason instead of hanging in ``dialing``."""

    def __init__(self, db: Database, clock: Clock, settings: Settings | None = None) -> None:
        self._db, self._clock = db, clock
        #: with settings, the call ends through the lifecycle (its report and usage)
        self._lifecycle = CallLifecycle(db, settings, clock) if settings is not None else None

    async def dial(self, call_id: str) -> None:
        if self._lifecycle is not None:
            await self._lifecycle.finish(
                call_id,
                CallCompletion(
                    status="failed",
                    ended_reason=DialEndedReason.DISABLED,
                    error="SIP is disabled on this server (FLIREO_SIP_ENABLED=0)",
                ),
            )
            return
        async with self._db.transaction() as s:
            call = await s.get(Call, call_id)
            if call is not None:
                set_status(
                    call,
                    "failed",
                    now=self._clock.now(),
                    ended_reason=DialEndedReason.DISABLED,
                    error="SIP is disabled on this server (FLIREO_SIP_ENABLED=0)",
                )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
