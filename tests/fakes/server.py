"""Run an ASGI app (a fake vendor, a webhook receiver) on a real loopback port.

The server runs in its own thread with its own event loop, so it serves tests
that are async, sync, or that start ``flireo serve`` in another process.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.websockets import WebSocket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"fake-{self.port}")
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


@contextmanager
def serve(app: Any, host: str = "127.0.0.1", port: int | None = None) -> Iterator[ServerThread]:
    """``with serve(app) as srv: httpx.get(srv.url + "/path")``"""
    srv = ServerThread(app, host, port)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def upgrade_left_unanswered(ws: WebSocket, seconds: float) -> bool:
    """A websocket fake's stalled handshake: leave the upgrade unanswered for
    ``seconds``; True when the client hung up meanwhile."""
    await ws.receive()  # websocket.connect: the upgrade request itself
    try:
        async with asyncio.timeout(seconds):
            message = await ws.receive()
    except TimeoutError:
        return False
    return bool(message["type"] == "websocket.disconnect")
