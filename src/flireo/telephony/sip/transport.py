"""SIP over UDP, TCP and TLS on asyncio (RFC 3261 §18, §26.2, RFC 3581).

One :class:`SipTransport` owns a UDP socket and a TCP listener on the same port,
optionally a TLS listener on its own port (5061 by default), plus the TCP and
TLS connections it accepted or opened (keyed by transport and remote address,
so a response or an in-dialog request goes back on the connection its peer used).
Every whole message is parsed here and handed up with the :class:`Flow` it came
on; requests get ``received``/``rport`` stamped on their top Via first.
Sending never blocks: a TCP connection still being opened queues what it is
given, and a failure is reported through the sender's ``on_error``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import Via
from flireo.telephony.sip.message import Headers, Message, Request, Response, frame_length, parse

log = structlog.get_logger(__name__)

MAX_MESSAGE = 65535
_KEEPALIVE = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Flow:
    """A transport plus a remote address: where a message came from or goes."""

    transport: str  # "UDP" | "TCP" | "TLS"
    host: str  # an IP literal (no brackets for IPv6)
    port: int
    #: the name a TLS connection to this flow checks the certificate against
    #: (the URI's host before DNS; None: ``host``)
    name: str | None = field(default=None, compare=False, hash=False)

    @property
    def addr(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


MessageHandler = Callable[[Message, Flow], None]
BadMessageHandler = Callable[[bytes, Flow, SipParseError], None]
ErrorHandler = Callable[[str], None]


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def stamp_received(request: Request, source: Flow) -> None:
    """RFC 3261 §18.2.1 and RFC 3581: note on the top Via where the request
    really came from, so the response can find its way back through NAT."""
    values = request.headers.get_all("Via")
    via = Via.parse(values[0])
    stamped = via
    if via.host.strip("[]") != source.host:
        stamped = stamped.with_param("received", source.host)
    if via.param("rport") == "":
        if stamped.param("received") is None:
            stamped = stamped.with_param("received", source.host)
        stamped = stamped.with_param("rport", str(source.port))
    if stamped is via:
        return
    headers = Headers()
    first = True
    for name, value in request.headers:
        if first and name == "Via":
            value, first = str(stamped), False
        headers.add(name, value)
    request.headers = headers


def response_flow(response: Response, source: Flow, connected: bool) -> Flow:
    """Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4): back on the
    request's connection while it is open, else to received/rport of the top Via."""
    if source.reliable and connected:
        return source
    via = response.top_via
    host = via.param("received") or via.host.strip("[]")
    rport = via.param("rport")
    port = int(rport) if rport and rport.isascii() and rport.isdigit() else via.sent_by[1]
    if not is_ip(host):  # a name we cannot resolve without blocking: answer the source
        host = source.host
    if not 0 < port < 65_536:  # a forged Via: answer where the request came from
        host, port = source.host, source.port
    return Flow(source.transport, host, port)


ConnKey = tuple[str, str, int]  # transport, host, port


class SipTransport:
    """UDP + TCP listeners on one port, TLS on another, and the connections in use.

    ``tls_server`` (a server :class:`ssl.SSLContext` with our certificate) opens
    the TLS listener on ``tls_port``; ``tls_client`` is the context for TLS
    connections we open (certificate verification as configured in it)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_message: MessageHandler,
        on_bad_message: BadMessageHandler,
        tcp: bool = True,
        tcp_idle_s: float = 600.0,
        in_use: Callable[[tuple[str, int]], bool] | None = None,
        tls_server: ssl.SSLContext | None = None,
        tls_client: ssl.SSLContext | None = None,
        tls_port: int = 5061,
    ) -> None:
        self.host = host
        self.port = port
        self.tcp = tcp
        self.tls_port = tls_port
        self._tls_server_ctx = tls_server
        self._tls_client_ctx = tls_client
        self._tls_server: asyncio.Server | None = None
        self._on_message = on_message
        self._on_bad = on_bad_message
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._conns: dict[ConnKey, _TcpConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle_s = tcp_idle_s
        self._in_use = in_use or (lambda _addr: False)
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(30):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
            bound = int(udp.get_extra_info("sockname")[1])
            sock = udp.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                except OSError:  # pragma: no cover - platform limits
                    pass
            if not self.tcp:
                self._udp, self.port = udp, bound
                break
            try:
                self._server = await loop.create_server(
                    lambda: _TcpConnection(self, None), self.host, bound, reuse_address=True
                )
            except OSError:
                udp.close()
                if self.port != 0 or attempt == 29:
                    raise
                continue  # the ephemeral UDP port was taken on TCP: try another
            self._udp, self.port = udp, bound
            break
        if self._tls_server_ctx is not None:
            try:
                self._tls_server = await loop.create_server(
                    lambda: _TcpConnection(self, None, "TLS"),
                    self.host,
                    self.tls_port,
                    ssl=self._tls_server_ctx,
                    reuse_address=True,
                    ssl_handshake_timeout=10.0,
                )
            except OSError:
                await self.stop()
                raise
            self.tls_port = int(self._tls_server.sockets[0].getsockname()[1])
        if self.tcp or self.tls:
            self._sweeper = loop.call_later(min(60.0, self._idle_s), self._sweep)

    @property
    def tls(self) -> bool:
        """TLS is possible: we listen on it or may open TLS connections."""
        return self._tls_server_ctx is not None or self._tls_client_ctx is not None

    @property
    def tls_listening(self) -> bool:
        return self._tls_server is not None

    async def stop(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._conns.values()):
            conn.close()
        self._conns.clear()
        if self._udp is not None:
            self._udp.close()
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
                await server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- sending -------------------------------------------------------------

    def send(self, data: bytes, flow: Flow, on_error: ErrorHandler | None = None) -> None:
        """Send one serialized message; ``flow.host`` must be an IP literal."""
        if self._closed:
            return
        if not 0 < flow.port < 65_536:  # sendto would raise, and asyncio close the socket
            if on_error is not None:
                on_error(f"bad port {flow.port}")
            return
        if flow.transport == "UDP":
            if self._udp is None:
                raise RuntimeError("transport not started")
            try:
                self._udp.sendto(data, flow.addr)
            except OSError as exc:
                if on_error is not None:
                    on_error(f"UDP send to {flow.host}:{flow.port} failed: {exc}")
            return
        key = (flow.transport, flow.host, flow.port)
        conn = self._conns.get(key)
        if conn is None:
            if not (
                (flow.transport == "TCP" and self.tcp)
                or (flow.transport == "TLS" and self._tls_client_ctx is not None)
            ):
                if on_error is not None:
                    on_error(f"transport {flow.transport} not available")
                return
            conn = self._connect(flow)
        conn.write(data, on_error)

    def send_response(self, response: Response, source: Flow) -> None:
        self.send(response.serialize(), self.response_flow(response, source))

    def response_flow(self, response: Response, source: Flow) -> Flow:
        return response_flow(response, source, self.is_connected(source))

    def is_connected(self, flow: Flow) -> bool:
        return flow.reliable and (flow.transport, flow.host, flow.port) in self._conns

    def _connect(self, flow: Flow) -> _TcpConnection:
        conn = _TcpConnection(self, flow.addr, flow.transport)
        self._conns[(flow.transport, flow.host, flow.port)] = conn
        task = asyncio.get_running_loop().create_task(self._open(conn, flow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return conn

    async def _open(self, conn: _TcpConnection, flow: Flow) -> None:
        loop = asyncio.get_running_loop()
        tls = flow.transport == "TLS"
        try:
            if tls:
                await asyncio.wait_for(
                    loop.create_connection(
                        lambda: conn,
                        flow.host,
                        flow.port,
                        ssl=self._tls_client_ctx,
                        server_hostname=flow.name or flow.host,
                        ssl_handshake_timeout=10.0,
                    ),
                    timeout=15.0,
                )
            else:
                await asyncio.wait_for(
                    loop.create_connection(lambda: conn, flow.host, flow.port), timeout=10.0
                )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            conn.failed(
                f"{flow.transport} connect to {flow.host}:{flow.port} failed: {exc or 'timeout'}"
            )

    # ---- receiving -----------------------------------------------------------

    def _received(self, data: bytes, flow: Flow, *, stream: bool) -> None:
        try:
            msg = parse(data, stream=stream)
            if isinstance(msg, Request):
                stamp_received(msg, flow)
        except SipParseError as exc:
            self._on_bad(data, flow, exc)
            return
        self._on_message(msg, flow)

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # keepalive
        self._received(data, Flow("UDP", addr[0], addr[1]), stream=False)

    def _registered(self, conn: _TcpConnection, addr: tuple[str, int]) -> None:
        key = (conn.kind, addr[0], addr[1])
        old = self._conns.get(key)
        if old is not None and old is not conn:
            old.close()
        self._conns[key] = conn

    def _lost(self, conn: _TcpConnection) -> None:
        if conn.addr is not None:
            key = (conn.kind, conn.addr[0], conn.addr[1])
            if self._conns.get(key) is conn:
                del self._conns[key]

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for (_, host, port), conn in list(self._conns.items()):
            if now - conn.last_used > self._idle_s and not self._in_use((host, port)):
                conn.close()
        self._sweeper = loop.call_later(min(60.0, self._idle_s), self._sweep)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._owner._datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("sip.udp_error", error=str(exc))  # ICMP unreachable etc.


class _TcpConnection(asyncio.Protocol):
    """One TCP (or TLS) connection: frames the byte stream by Content-Length."""

    def __init__(
        self, owner: SipTransport, addr: tuple[str, int] | None, kind: str = "TCP"
    ) -> None:
        self._owner = owner
        self.addr = addr
        self.kind = kind
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: list[tuple[bytes, ErrorHandler | None]] = []
        self._dead = False
        self.last_used = asyncio.get_running_loop().time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self.addr is None:  # accepted
            peer = transport.get_extra_info("peername")
            self.addr = (str(peer[0]), int(peer[1]))
        self._owner._registered(self, self.addr)
        for data, _ in self._pending:
            transport.write(data)
        self._pending.clear()

    def write(self, data: bytes, on_error: ErrorHandler | None) -> None:
        self.last_used = asyncio.get_running_loop().time()
        if self._dead:
            if on_error is not None:
                on_error("TCP connection closed")
        elif self._transport is None:
            self._pending.append((data, on_error))
        else:
            self._transport.write(data)

    def failed(self, reason: str) -> None:
        self._dead = True
        self._owner._lost(self)
        pending, self._pending = self._pending, []
        for _, on_error in pending:
            if on_error is not None:
                on_error(reason)

    def data_received(self, data: bytes) -> None:
        self.last_used = asyncio.get_running_loop().time()
        buf = self._buffer
        buf += data
        while buf:
            if buf[:4] == _KEEPALIVE:  # RFC 5626 ping: answer a pong
                del buf[:4]
                if self._transport is not None:
                    self._transport.write(b"\r\n")
                continue
            try:
                size = frame_length(buf, MAX_MESSAGE)
            except SipParseError as exc:
                log.info("sip.tcp_framing_error", peer=self.addr, error=str(exc))
                self.close()
                return
            if size is None:
                return
            message = bytes(buf[:size])
            del buf[:size]
            if self.addr is not None:
                self._owner._received(
                    message, Flow(self.kind, self.addr[0], self.addr[1]), stream=True
                )

    def connection_lost(self, exc: Exception | None) -> None:
        self.failed(f"{self.kind} connection lost")

    def close(self) -> None:
        self._dead = True
        if self._transport is not None:
            self._transport.close()
        self._owner._lost(self)
