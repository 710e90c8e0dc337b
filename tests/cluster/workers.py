"""Several real ``flireo serve`` workers on one PostgreSQL database and one Redis,
called by sipp directly (no Kamailio): the runtime side of issue 13
(``tests/cluster/test_workers_*.py``).

:class:`Workers` starts them with distinct node ids, API/SIP ports and RTP ranges,
one secret keyring, ``FLIREO_BUS=redis``; provisions an agent (silent: no greeting,
so a call costs no TTS/STT/LLM) answering :data:`NUMBER`, whose webhooks go to a
local :class:`~tests.fakes.webhook_receiver.WebhookReceiver`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from flireo.store.db import Database
from flireo.store.tables import Call, UsageLog
from tests.conftest import skip_or_fail
from tests.db import postgres_url
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import serve
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.live.server import LiveServer, PostgresDatabase

NUMBER = "+31850835037"
FINAL = ("ended", "failed", "rejected")


def redis_url() -> str:
    url = os.environ.get("FLIREO_TEST_REDIS_URL")
    if not url:
        skip_or_fail("FLIREO_TEST_REDIS_URL is not set")
        raise AssertionError("unreachable")
    return url


@dataclass
class SipReply:
    status: int
    reason: str
    headers: dict[str, str]


def sip_probe(port: int, method: str = "OPTIONS", timeout: float = 2.0) -> SipReply | None:
    """Send one out-of-dialog ``method`` (OPTIONS, or an INVITE with an SDP offer) over
    UDP to 127.0.0.1:``port``; the first final response, or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        tag, call_id = uuid.uuid4().hex[:8], uuid.uuid4().hex
        body = b""
        if method == "INVITE":
            body = (
                b"v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                b"t=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            )
        head = (
            f"{method} sip:{NUMBER}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
            f"From: <sip:+31612345678@127.0.0.1:{local}>;tag={tag}\r\n"
            f"To: <sip:{NUMBER}@127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:probe@127.0.0.1:{local}>\r\nMax-Forwards: 70\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendto(head.encode() + body, ("127.0.0.1", port))
        sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                return None
            first, _, rest = data.partition("\r\n")
            parts = first.split(" ", 2)
            status = int(parts[1])
            if status < 200:
                continue
            headers = {}
            for line in rest.split("\r\n\r\n", 1)[0].split("\r\n"):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            return SipReply(status, parts[2] if len(parts) > 2 else "", headers)
    return None


class Workers:
    """``count`` workers; ``workers[0]`` starts first (migrates, prints the API key)."""

    def __init__(
        self,
        root: Path,
        count: int,
        *,
        database_url: str,
        env: dict[str, str] | None = None,
        per_worker: list[dict[str, str]] | None = None,
    ) -> None:
        self.root = root
        self.tag = uuid.uuid4().hex[:8]
        keyring = base64.b64encode(secrets.token_bytes(32)).decode()
        self.workers: list[LiveServer] = []
        for i in range(count):
            rtp = 46000 + i * 1000
            self.workers.append(
                LiveServer(
                    root / f"w{i}",
                    env={
                        "FLIREO_BUS": "redis",
                        "FLIREO_REDIS_URL": redis_url(),
                        "FLIREO_DATABASE_URL": database_url,
                        "FLIREO_SECRET_KEY": keyring,
                        "FLIREO_NODE_ID": f"t{self.tag}-w{i}",
                        "FLIREO_RTP_PORT_MIN": str(rtp),
                        "FLIREO_RTP_PORT_MAX": str(rtp + 998),
                        "FLIREO_DRAIN_TIMEOUT_S": "5",
                        "FLIREO_LOG_LEVEL": "info",
                        **(env or {}),
                        **((per_worker or [])[i] if per_worker and i < len(per_worker) else {}),
                    },
                )
            )
        self.clients: list[httpx.AsyncClient] = []
        #: the fake LLM (its key is the organization's BYOK key) and its base URL
        self.llm = FakeOpenAI(api_key="sk-fake-openai")
        self.llm_url = ""
        #: where the agents' webhooks go (the receiver of :func:`cluster`)
        self.hooks_url = ""

    def node_id(self, i: int) -> str:
        return self.workers[i].env["FLIREO_NODE_ID"]

    async def start(self) -> None:
        first = self.workers[0]
        await asyncio.to_thread(first.start)
        assert first.api_key, "the first worker printed no API key"
        await asyncio.gather(*(asyncio.to_thread(w.start) for w in self.workers[1:]))
        for w in self.workers[1:]:
            w.api_key = first.api_key
        self.clients = [
            httpx.AsyncClient(base_url=w.api, headers=w.headers, timeout=30) for w in self.workers
        ]

    async def stop(self) -> None:
        for client in self.clients:
            await client.aclose()
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))

    def api(self, i: int) -> httpx.AsyncClient:
        return self.clients[i]

    async def provision(self, llm: FakeOpenAI, llm_url: str, webhook_url: str) -> str:
        """A silent agent answering :data:`NUMBER`; returns the agent id."""
        api = self.api(0)
        r = await api.post("/byok", json={"provider": "openai", "api_key": llm.api_key})
        assert r.status_code in (200, 201), r.text
        r = await api.post(
            "/agents",
            json={
                "name": "Cluster desk",
                "stt_config": {"provider": "whisper", "language": "en"},
                "llm_config": {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "base_url": llm_url,
                    "messages": [{"role": "system", "content": "You are a receptionist."}],
                },
                "tts_config": {"provider": "piper"},
                "webhook_url": webhook_url,
                "webhook_events": ["status-update", "end-of-call-report"],
            },
        )
        assert r.status_code == 201, r.text
        agent_id = str(r.json()["agent"]["id"])
        r = await api.post("/sip-trunks", json={"name": "carrier", "host": "127.0.0.1"})
        assert r.status_code == 201, r.text
        r = await api.post(
            "/numbers",
            json={
                "phone_number": NUMBER,
                "name": "Main",
                "agent_id": agent_id,
                "transfer_trunk_id": r.json()["sip_trunk"]["id"],
            },
        )
        assert r.status_code == 201, r.text
        return agent_id

    async def calls(self, via: int = 0) -> list[dict[str, Any]]:
        r = await self.api(via).get("/calls", params={"limit": 100})
        assert r.status_code == 200, r.text
        body = r.json()
        calls: list[dict[str, Any]] = body["calls"] if isinstance(body, dict) else body
        return calls

    async def call(self, call_id: str, via: int = 0) -> dict[str, Any]:
        r = await self.api(via).get(f"/calls/{call_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body.get("call", body)

    async def wait_calls(
        self, count: int, *, status: str = "in-progress", via: int = 0, limit_s: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` calls have ``status``; returns those."""
        deadline = time.monotonic() + limit_s
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = await self.calls(via)
            hits = [c for c in seen if c["status"] == status]
            if len(hits) >= count:
                return hits
            await asyncio.sleep(0.2)
        raise AssertionError(f"{count} calls not {status} after {limit_s}s: {seen}")

    def redis(self) -> Redis:
        return Redis.from_url(redis_url(), decode_responses=True)


async def stored_calls(database_url: str) -> tuple[list[Call], list[UsageLog]]:
    db = Database(database_url)
    try:
        async with db.read() as s:
            calls = list((await s.execute(select(Call))).scalars())
            usage = list((await s.execute(select(UsageLog))).scalars())
    finally:
        await db.dispose()
    return calls, usage


def reports(receiver: WebhookReceiver) -> dict[str, list[dict[str, Any]]]:
    """End-of-call reports delivered, by call id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for req in receiver.delivered():
        message = req.json.get("message", {})
        if message.get("type") == "end-of-call-report":
            out.setdefault(message["call"]["id"], []).append(message)
    return out


@asynccontextmanager
async def cluster(
    root: Path, count: int, *, provision: bool = True, **kwargs: Any
) -> AsyncIterator[tuple[Workers, WebhookReceiver, str]]:
    """``count`` started workers with the silent agent provisioned (unless not
    ``provision``), the webhook receiver, and the database URL; everything stopped
    at the end."""
    url = postgres_url()
    if not url:
        skip_or_fail("FLIREO_TEST_POSTGRES_URL is not set")
        raise AssertionError("unreachable")
    pg = PostgresDatabase(url)
    await asyncio.to_thread(pg.create)
    receiver = WebhookReceiver()
    workers = Workers(root, count, database_url=pg.url, **kwargs)
    try:
        with serve(workers.llm.app()) as llm, serve(receiver.app()) as hooks:
            workers.llm_url, workers.hooks_url = f"{llm.url}/v1", f"{hooks.url}/hook"
            await workers.start()
            try:
                if provision:
                    await workers.provision(workers.llm, workers.llm_url, workers.hooks_url)
                yield workers, receiver, pg.url
            finally:
                await workers.stop()
    finally:
        await asyncio.to_thread(pg.drop)


def log_tail(workers: Workers) -> Iterator[str]:
    for i, w in enumerate(workers.workers):
        yield f"--- worker {i} ({workers.node_id(i)}) ---\n{w.logs()[-3000:]}"
