"""The SIP user agent the platform uses: :class:`SipEndpoint` listens, hands new
INVITEs to ``on_invite`` as :class:`IncomingCall`, places calls with
:meth:`SipEndpoint.invite`, and routes everything else to transactions and
dialogs (RFC 3261 §8, §12–17).

Request handling order for a request that is not a retransmission: ACK to its
dialog; ``on_request_filter`` (drop, or a stateless rejection); CANCEL to its
INVITE; Max-Forwards / Require / merged-request checks; in-dialog requests to
their dialog (481 when unknown); then INVITE, OPTIONS, or 405 with Allow.
A malformed request gets 400 when it has enough headers to be answered,
otherwise it is dropped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

import structlog

from flireo.telephony.sip.dialog import ALLOW, Dialog, ReferResult
from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import NameAddr, parse_any_uri
from flireo.telephony.sip.incoming import CallCancelled, IncomingCall
from flireo.telephony.sip.message import (
    REASONS,
    Headers,
    Message,
    Request,
    Response,
    raw_head,
    response_to,
)
from flireo.telephony.sip.outgoing import DialFailed, DialFailureKind, OutgoingInvite
from flireo.telephony.sip.routing import NextHop, next_hop, resolve
from flireo.telephony.sip.transaction import (
    InviteServerTransaction,
    ServerKey,
    ServerTransaction,
    Timers,
    TransactionLayer,
    invite_key_for_cancel,
)
from flireo.telephony.sip.transport import Flow, SipTransport
from flireo.telephony.sip.uri import SipUri

__all__ = [
    "DROP",
    "CallCancelled",
    "DialFailed",
    "DialFailureKind",
    "Dialog",
    "IncomingCall",
    "ReferResult",
    "SipEndpoint",
]

log = structlog.get_logger(__name__)

DROP: Final = 0
"""Return this from ``on_request_filter`` to ignore a request without answering."""

SUPPORTED: tuple[str, ...] = ()  # option tags we implement in Require (none yet)
_ANSWER_ONLY = ("ACK", "CANCEL")
_NEEDS_DIALOG = ("BYE", "INFO", "NOTIFY", "UPDATE", "PRACK", "REFER")

InviteHandler = Callable[[IncomingCall], Awaitable[None]]
RequestFilter = Callable[[Request, tuple[str, int]], int | None]
#: ``(flow, host)`` -> None, or raises :class:`DialFailed`: judges the address an
#: INVITE is about to go to (the resolved one: it is the one used)
FlowCheck = Callable[[Flow, str], None]


class SipEndpoint:
    """A SIP user agent on one UDP (+TCP) port, and TLS on ``tls_port`` when
    given a server context (``tls_server``); ``tls_client`` for calls over TLS."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tcp: bool = True,
        user_agent: str = "Flireo",
        t1: float = 0.5,
        public_host: str | None = None,
        tls_server: ssl.SSLContext | None = None,
        tls_client: ssl.SSLContext | None = None,
        tls_port: int = 5061,
    ) -> None:
        self.host = host
        self.tcp = tcp
        self.user_agent = user_agent
        self.timers = Timers.scaled(t1)
        self.public_host = public_host
        self.on_invite: InviteHandler | None = None
        self.on_request_filter: RequestFilter | None = None
        self.flow_check: FlowCheck | None = None
        #: extra headers of the 200 to an out-of-dialog OPTIONS (e.g. the live-call load)
        self.options_headers: Callable[[], list[tuple[str, str]]] | None = None
        self._tcp_refs: dict[tuple[str, int], int] = {}  # TCP connections dialogs use
        self.transport = SipTransport(
            host,
            port,
            tcp=tcp,
            on_message=self._on_message,
            on_bad_message=self._on_bad,
            in_use=self._tcp_refs.__contains__,
            tls_server=tls_server,
            tls_client=tls_client,
            tls_port=tls_port,
        )
        self._layer: TransactionLayer | None = None
        self._dialogs: dict[tuple[str, str, str], Dialog] = {}
        self._incoming: dict[ServerKey, IncomingCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._local_ips: dict[str, str] = {}
        self._running = False

    # ---- lifecycle ------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.transport.port

    @property
    def tls_port(self) -> int | None:
        """The TLS listener's port (None without one)."""
        return self.transport.tls_port if self.transport.tls_listening else None

    @property
    def layer(self) -> TransactionLayer:
        if self._layer is None:
            raise RuntimeError("SipEndpoint not started")
        return self._layer

    @property
    def dialogs(self) -> list[Dialog]:
        return list(self._dialogs.values())

    async def start(self) -> None:
        await self.transport.start()
        self._layer = TransactionLayer(self.transport, self.timers)
        self._running = True
        log.info(
            "sip.listening", host=self.host, port=self.port, tcp=self.tcp, tls_port=self.tls_port
        )

    async def stop(self) -> None:
        """Stop listening; sends nothing (calls in progress just end, reason ``shutdown``)."""
        if not self._running:
            return
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        for dialog in list(self._dialogs.values()):
            dialog.shutdown()
        self._dialogs.clear()
        self._tcp_refs.clear()
        for call in list(self._incoming.values()):
            call.cancelled.set()
        self._incoming.clear()
        if self._layer is not None:
            self._layer.shutdown()
        await self.transport.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> SipEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` owned by the endpoint (cancelled by :meth:`stop`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sip.task_failed", error=repr(task.exception()))

    # ---- placing calls --------------------------------------------------------------

    async def invite(
        self,
        target: str,
        *,
        from_uri: str,
        sdp_offer: bytes,
        credentials: tuple[str, str] | None = None,
        timeout_s: float = 60,
        on_progress: Callable[[int, str], None] | None = None,
        headers: list[tuple[str, str]] | None = None,
        proxy: tuple[str, int] | None = None,
        transport: str | None = None,
    ) -> Dialog:
        """Call ``target`` (a sip: URI); the answered :class:`Dialog`, or :class:`DialFailed`.

        ``proxy`` sends the INVITE to that address instead of the target's host
        (an outbound proxy / trunk address); ``transport`` ("UDP"/"TCP"/"TLS")
        overrides the URI's ``transport`` parameter. Cancelling the awaiting
        task CANCELs the INVITE (cleanup continues in the background).
        """
        uri = parse_any_uri(target)
        if not isinstance(uri, SipUri):
            raise ValueError(f"can only dial sip: URIs, not {target!r}")
        hop = next_hop(uri)
        if proxy is not None:
            hop = NextHop(proxy[0], proxy[1], hop.transport)
        if transport is not None:
            hop = NextHop(hop.host, hop.port, transport.upper())
        if hop.transport == "TCP" and not self.tcp:
            raise DialFailed(None, "TCP is disabled on this endpoint", "failed")
        if hop.transport == "TLS" and not self.transport.tls:
            raise DialFailed(None, "TLS is not configured on this endpoint", "failed")
        try:
            flow = await resolve(hop)
        except OSError as exc:
            raise DialFailed(None, f"cannot resolve {hop.host}: {exc}", "failed") from exc
        if self.flow_check is not None:
            self.flow_check(flow, hop.host)
        if from_uri.startswith(("sip:", "sips:", "tel:")):
            from_addr = NameAddr(parse_any_uri(from_uri))
        else:
            from_addr = NameAddr.parse(from_uri)
        outgoing = OutgoingInvite(
            self,
            target=uri,
            from_addr=from_addr,
            sdp_offer=sdp_offer,
            flow=flow,
            credentials=credentials,
            on_progress=on_progress,
            headers=headers or [],
        )
        return await outgoing.run(timeout_s)

    # ---- helpers for dialogs and calls ---------------------------------------------

    def advertised_host(self, flow: Flow) -> str:
        if self.public_host:
            return self.public_host
        if not _is_wildcard(self.host):
            return self.host
        ip = self._local_ips.get(flow.host)
        if ip is None:  # the source address the kernel picks towards the peer
            family = socket.AF_INET6 if ":" in flow.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect((flow.host, flow.port))
                    ip = str(probe.getsockname()[0])
                except OSError:
                    ip = "127.0.0.1"
            self._local_ips[flow.host] = ip
        return ip

    def _hostport(self, flow: Flow) -> str:
        host = self.advertised_host(flow)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = self.transport.tls_port if flow.transport == "TLS" else self.port
        return f"{host}:{port}"

    def via(self, flow: Flow, branch: str) -> str:
        return f"SIP/2.0/{flow.transport} {self._hostport(flow)};branch={branch};rport"

    def contact(self, flow: Flow) -> str:
        suffix = {"TCP": ";transport=tcp", "TLS": ";transport=tls"}.get(flow.transport, "")
        return f"<sip:flireo@{self._hostport(flow)}{suffix}>"

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", self.user_agent)]

    def response(
        self,
        req: Request,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        headers = [*headers, ("Server", self.user_agent)]
        return response_to(req, status, reason, to_tag=to_tag, headers=headers, body=body)

    def answer_options(self, req: Request, txn: ServerTransaction) -> None:
        txn.respond(
            self.response(
                req,
                200,
                to_tag=self._tag_for(req),
                headers=[
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    *(self.options_headers() if self.options_headers is not None else ()),
                ],
            )
        )

    def register(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.key) is dialog:
            return
        self._dialogs[dialog.key] = dialog
        if dialog.peer.reliable:
            addr = dialog.peer.addr
            self._tcp_refs[addr] = self._tcp_refs.get(addr, 0) + 1

    def forget(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.key) is not dialog:
            return
        del self._dialogs[dialog.key]
        if dialog.peer.reliable:
            addr = dialog.peer.addr
            left = self._tcp_refs.get(addr, 1) - 1
            if left > 0:
                self._tcp_refs[addr] = left
            else:
                self._tcp_refs.pop(addr, None)

    def finished(self, call: IncomingCall) -> None:
        """An incoming INVITE got its final response."""
        self._incoming.pop(call._txn.key, None)

    # ---- receiving -----------------------------------------------------------------

    def _on_message(self, msg: Message, flow: Flow) -> None:
        if self._layer is None or not self._running:
            return
        try:
            if isinstance(msg, Response):
                self._on_response(msg)
            else:
                self._on_request(msg, flow)
        except SipParseError as exc:  # a header we only parse when we need it
            log.info("sip.bad_header", error=str(exc), source=flow.addr)
            self._answer_failure(msg, flow, 400)
        except Exception:
            log.exception("sip.handler_failed", source=flow.addr)
            self._answer_failure(msg, flow, 500)

    def _answer_failure(self, msg: Message, flow: Flow, status: int) -> None:
        if isinstance(msg, Request) and msg.method not in _ANSWER_ONLY:
            try:
                self._stateless(msg, flow, status, None)
            except Exception:  # the request is too broken to answer
                log.debug("sip.unanswerable", source=flow.addr)

    def _on_response(self, response: Response) -> None:
        if self.layer.receive_response(response):
            return
        # a 2xx retransmitted after the INVITE transaction ended: our ACK was lost
        if response.cseq.method == "INVITE" and 200 <= response.status < 300:
            key = (response.call_id, response.from_.tag or "", response.to.tag or "")
            dialog = self._dialogs.get(key)
            if dialog is not None:
                dialog.resend_ack(response)

    def _on_request(self, req: Request, flow: Flow) -> None:
        layer = self.layer
        txn = layer.match(req)
        if txn is not None and not txn.receive(req):
            return  # a retransmission (answered again if we had answered)
        if req.method == "ACK":
            dialog = self._dialogs.get(self._dialog_key(req))
            if dialog is not None:
                dialog.handle_ack(req)
            return
        if self.on_request_filter is not None:
            try:
                verdict = self.on_request_filter(req, flow.addr)
            except Exception:
                log.exception("sip.request_filter_failed")
                verdict = None
            if verdict == DROP:
                return
            if verdict is not None:
                self._stateless(req, flow, verdict, None)
                return
        if req.method == "CANCEL":
            self._on_cancel(req, flow)
            return
        if req.to.tag is None and layer.is_merged(req):
            merged = self.response(req, 482, to_tag=self._tag_for(req))
            layer.create_server(req, flow).respond(merged)
            return
        server = layer.create_server(req, flow)
        if req.method == "INVITE" and req.to.tag is None and self._looped(req, flow):
            log.warning("sip.loop_detected", source=flow.addr, call_id=req.call_id)
            server.respond(self.response(req, 482, to_tag=self._tag_for(req)))
            return
        if self._refused(req, server):
            return
        if req.to.tag is not None:
            dialog = self._dialogs.get(self._dialog_key(req))
            if dialog is None:
                server.respond(self.response(req, 481))
            else:
                dialog.handle_request(req, server)
            return
        method = req.method
        if method == "INVITE":
            assert isinstance(server, InviteServerTransaction)
            self._on_invite(req, flow, server)
        elif method == "OPTIONS":
            self.answer_options(req, server)
        elif method in _NEEDS_DIALOG:
            server.respond(self.response(req, 481, to_tag=self._tag_for(req)))
        else:
            server.respond(
                self.response(req, 405, to_tag=self._tag_for(req), headers=[("Allow", ALLOW)])
            )

    def _looped(self, req: Request, flow: Flow) -> bool:
        """RFC 3261 §8.2.2.2 / §16.3: an INVITE that already passed through us (one of
        its Vias is ours: a branch of an INVITE we sent, or our own sent-by)."""
        own_hosts = {self.advertised_host(flow), self.public_host, self.host} - {None, ""}
        for via in req.vias:
            branch = via.branch
            if branch and self.layer.sent_invite(branch):
                return True
            host, port = via.sent_by
            if port == self.port and host.strip("[]") in own_hosts and not _is_wildcard(host):
                return True
        return False

    def _refused(self, req: Request, server: ServerTransaction) -> bool:
        """Max-Forwards exhausted or an extension we lack in Require."""
        max_forwards = req.headers.get("Max-Forwards")
        if max_forwards is not None and int(max_forwards) == 0 and req.method != "OPTIONS":
            server.respond(self.response(req, 483, to_tag=self._tag_for(req)))
            return True
        required = [
            option.strip()
            for option in req.headers.get_all("Require")
            if option.strip() and option.strip().lower() not in SUPPORTED
        ]
        if required:
            server.respond(
                self.response(
                    req,
                    420,
                    "Bad Extension",
                    to_tag=self._tag_for(req),
                    headers=[("Unsupported", ", ".join(required))],
                )
            )
            return True
        return False

    def _on_invite(self, req: Request, flow: Flow, server: InviteServerTransaction) -> None:
        content_type = req.content_type
        if (
            req.body
            and content_type not in ("application/sdp", "")
            and not content_type.startswith("multipart/")
        ):
            server.respond(
                self.response(
                    req, 415, to_tag=self._tag_for(req), headers=[("Accept", "application/sdp")]
                )
            )
            return
        server.respond(self.response(req, 100))
        handler = self.on_invite
        if handler is None:
            server.respond(self.response(req, 480, to_tag=self._tag_for(req)))
            return
        call = IncomingCall(self, req, flow, server)
        self._incoming[server.key] = call
        self.spawn(self._run_incoming(handler, call))

    async def _run_incoming(self, handler: InviteHandler, call: IncomingCall) -> None:
        try:
            await handler(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sip.on_invite_failed", call_id=call.call_id)
            if not call.finalized and call._dialog is None:
                await call.reject(500)
            return
        if not call.finalized and call._dialog is None:
            log.warning("sip.invite_left_unanswered", call_id=call.call_id)
            await call.reject(480)

    def _on_cancel(self, req: Request, flow: Flow) -> None:
        server = self.layer.create_server(req, flow)
        invite = self.layer.find(invite_key_for_cancel(req))
        if invite is None:
            server.respond(self.response(req, 481))
            return
        call = self._incoming.get(invite.key)
        to_tag = call.to_tag if call is not None else self._tag_for(req)
        server.respond(self.response(req, 200, to_tag=to_tag))
        if call is not None:
            call.cancel()

    def _on_bad(self, data: bytes, flow: Flow, error: SipParseError) -> None:
        """A message that does not parse: 400 (or 505) when it is an answerable request."""
        if not self._running:
            return
        head = raw_head(data)
        if head.method is None or head.method in _ANSWER_ONLY:
            return
        h = head.headers
        names = ("Via", "From", "To", "Call-ID", "CSeq")
        if any(h.get(name) is None for name in names):
            return
        out = Headers()
        for name in names:
            for value in h.get_all(name):
                out.add(name, value)
        detail = "".join(c for c in str(error)[:100] if c.isprintable() and c not in '"\\')
        out.add("Warning", f'399 flireo "{detail}"')
        out.add("Server", self.user_agent)
        status = error.status if 400 <= error.status < 600 else 400
        response = Response(out, b"", status, REASONS.get(status, "Bad Request"))
        self.transport.send(response.serialize(), flow)

    def _stateless(self, req: Request, flow: Flow, status: int, reason: str | None) -> None:
        if req.method == "ACK":
            return
        self.transport.send_response(
            self.response(req, status, reason, to_tag=self._tag_for(req)), flow
        )

    @staticmethod
    def _dialog_key(req: Request) -> tuple[str, str, str]:
        return req.call_id, req.to.tag or "", req.from_.tag or ""

    @staticmethod
    def _tag_for(req: Request) -> str:
        """A To tag for a final response outside a dialog: stable across
        retransmissions of the request (derived from its branch)."""
        return (req.top_via.branch or req.call_id)[-12:].replace(".", "x") or "flireo"


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
