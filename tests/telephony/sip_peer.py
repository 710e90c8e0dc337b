"""A bare UDP socket speaking hand-written SIP: the far end for tests that need
exact control over what is sent, when, and what is left unanswered."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import cast

from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.message import Headers, Message, Request, Response, parse

SDP = (
    b"v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@dataclass(frozen=True)
class Received:
    at: float
    message: Message  # what parsed; see ``raw`` for a message our parser rejects
    raw: bytes

    @property
    def first_line(self) -> str:
        return self.raw.split(b"\r\n", 1)[0].decode(errors="replace")


class RawPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.inbox: asyncio.Queue[Received] = asyncio.Queue()
        self.port = 0

    @classmethod
    async def open(cls) -> RawPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(self.transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = asyncio.get_running_loop().time()
        try:
            message: Message = parse(data)
        except SipParseError:  # e.g. our 400 echoing the bad header back
            message = Response(Headers(), b"", int(data[8:11]), "unparsed")
        self.inbox.put_nowait(Received(now, message, data))

    def send(self, data: bytes | str, port: int) -> None:
        assert self.transport is not None
        raw = data.encode() if isinstance(data, str) else data
        self.transport.sendto(raw, ("127.0.0.1", port))

    async def next(self, limit_s: float = 5.0) -> Received:
        return await asyncio.wait_for(self.inbox.get(), limit_s)

    async def next_response(self, status: int, limit_s: float = 5.0) -> Received:
        """Skip everything until a response with ``status``."""
        while True:
            got = await self.next(limit_s)
            if isinstance(got.message, Response) and got.message.status == status:
                return got

    async def next_request(self, method: str, limit_s: float = 5.0) -> Received:
        while True:
            got = await self.next(limit_s)
            if isinstance(got.message, Request) and got.message.method == method:
                return got

    def drain(self) -> list[Received]:
        out = []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class CallIds:
    call_id: str
    from_tag: str
    branch: str

    @classmethod
    def fresh(cls) -> CallIds:
        return cls(secrets.token_hex(8), secrets.token_hex(4), "z9hG4bK" + secrets.token_hex(8))


def sip_request(
    method: str,
    *,
    peer: RawPeer,
    ep_port: int,
    ids: CallIds,
    cseq: int = 1,
    to_tag: str | None = None,
    branch: str | None = None,
    body: bytes = b"",
    extra: str = "",
    cseq_method: str | None = None,
    user: str = "agent",
) -> bytes:
    to = f"<sip:{user}@127.0.0.1:{ep_port}>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} sip:{user}@127.0.0.1:{ep_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch={branch or ids.branch};rport\r\n"
        f"From: <sip:peer@127.0.0.1:{peer.port}>;tag={ids.from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {ids.call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        f"Contact: <sip:peer@127.0.0.1:{peer.port}>\r\n"
        f"Max-Forwards: 70\r\n"
        f"{extra}"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def reply(req: Request, status: int, reason: str, *, to_tag: str | None = None) -> bytes:
    """A minimal response to ``req`` from the peer."""
    to = req.headers.get("To") or ""
    if to_tag and "tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in req.headers.get_all("Via")]
    lines += [
        f"From: {req.headers.get('From')}",
        f"To: {to}",
        f"Call-ID: {req.call_id}",
        f"CSeq: {req.cseq}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
