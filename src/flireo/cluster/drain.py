"""SIGTERM drains the worker instead of cutting its calls.

The first SIGTERM (or SIGINT) stops taking new calls at once (the SIP gateway
answers out-of-dialog OPTIONS and new INVITEs with 503, so Kamailio's dispatcher
marks the worker inactive; the campaign runner stops claiming leads), while the
API keeps serving and the live calls run to their end. When none is left, or
after ``FLIREO_DRAIN_TIMEOUT_S``, the HTTP server shuts down and ``serve``'s
cleanup hangs up whatever is still live (each call ends once, ``call-cancelled``).
A second signal during the drain stops at once. The process exits with code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from types import FrameType

import structlog
import uvicorn

log = structlog.get_logger(__name__)

#: how often the drain looks at the live-call count
_POLL_S = 0.2


class Drain:
    def __init__(
        self,
        *,
        timeout_s: float,
        live_calls: Callable[[], int],
        on_start: Callable[[], Awaitable[None]],
        on_done: Callable[[bool], None],
    ) -> None:
        """``on_start`` stops new calls; ``on_done(forced)`` ends the process."""
        self.timeout_s = timeout_s
        self.live_calls = live_calls
        self._on_start, self._on_done = on_start, on_done
        self.draining = False
        self._forced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def signalled(self, sig: int) -> None:
        """A SIGTERM/SIGINT arrived (called on the event loop)."""
        if not self.draining:
            self.draining = True
            log.info("draining", signal=signal.Signals(sig).name, live_calls=self.live_calls())
            self._task = asyncio.create_task(self._run(), name="drain")
        else:
            log.info("second signal: stopping now", live_calls=self.live_calls())
            self._forced.set()
            self._on_done(True)

    async def _run(self) -> None:
        try:
            await self._on_start()
        except Exception:  # still drain: the calls must not be cut
            log.exception("drain start failed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while self.live_calls() > 0 and loop.time() < deadline and not self._forced.is_set():
            try:
                async with asyncio.timeout(_POLL_S):
                    await self._forced.wait()
            except TimeoutError:
                pass
        if self._forced.is_set():
            return
        left = self.live_calls()
        if left:
            log.warning("drain timeout: hanging up the calls still live", live_calls=left)
        else:
            log.info("drained")
        self._on_done(False)

    async def cancel(self) -> None:
        """The server stopped (however): no drain task outlives it."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class DrainingServer(uvicorn.Server):
    """uvicorn, with its exit signals handed to a :class:`Drain` (and not raised
    again once it has stopped, so the process exits 0)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.drain: Drain | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def stop(self, *, force: bool) -> None:
        self.should_exit = True
        if force:
            self.force_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        drain, loop = self.drain, self._loop
        if drain is None or loop is None:
            self.stop(force=self.should_exit)
            return
        # a signal handler runs between two bytecodes of whatever the loop does
        loop.call_soon_threadsafe(drain.signalled, sig)
