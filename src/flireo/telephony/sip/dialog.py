"""SIP dialogs (RFC 3261 §12–15): in-dialog requests both ways, the 2xx/ACK
handshake, BYE, session refresh by re-INVITE/UPDATE, INFO, and REFER with its
NOTIFY message/sipfrag progress (RFC 3515)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from flireo.telephony.sip.headers import NameAddr
from flireo.telephony.sip.ids import new_branch
from flireo.telephony.sip.message import Request, Response, request
from flireo.telephony.sip.routing import reconnect_flow, route_request
from flireo.telephony.sip.transaction import (
    ServerTransaction,
    Timers,
    TransactionError,
    TransactionLayer,
)
from flireo.telephony.sip.transport import Flow, SipTransport

log = structlog.get_logger(__name__)


class DialogHost(Protocol):
    """What a dialog needs from its endpoint."""

    @property
    def transport(self) -> SipTransport: ...

    @property
    def layer(self) -> TransactionLayer: ...

    @property
    def timers(self) -> Timers: ...

    def via(self, flow: Flow, branch: str) -> str: ...

    def contact(self, flow: Flow) -> str: ...

    def extra_headers(self) -> list[tuple[str, str]]: ...

    def response(
        self,
        req: Request,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response: ...

    def answer_options(self, req: Request, txn: ServerTransaction) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    def forget(self, dialog: Dialog) -> None: ...


@dataclass(frozen=True, slots=True)
class ReferResult:
    """How a REFER transfer ended: ``status`` is the final sipfrag status the
    transferee reported (or the REFER's own error response)."""

    ok: bool
    status: int | None
    detail: str


@dataclass(slots=True)
class _PendingAck:
    data: bytes
    flow: Flow
    cseq: int
    deadline: float
    interval: float
    timer: asyncio.TimerHandle | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)


def sipfrag_status(body: bytes) -> tuple[int | None, str]:
    """``SIP/2.0 200 OK`` (first line of a message/sipfrag) → (200, the line)."""
    line = body.decode("utf-8", "replace").strip().splitlines()[0] if body.strip() else ""
    parts = line.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and parts[1].isdigit():
        return int(parts[1]), line
    return None, line


class Dialog:
    """One confirmed (or being confirmed) dialog of a call.

    ``ended`` is set once, with ``end_reason`` one of ``remote-bye``,
    ``local-bye``, ``ack-timeout`` (our 2xx was never ACKed: we sent BYE) or
    ``shutdown`` (the endpoint stopped; nothing was sent).
    """

    def __init__(
        self,
        host: DialogHost,
        *,
        role: str,
        call_id: str,
        local: NameAddr,
        remote: NameAddr,
        local_cseq: int,
        remote_cseq: int | None,
        remote_target: str,
        route_set: Sequence[str],
        peer: Flow,
        local_sdp: bytes,
        remote_sdp: bytes,
    ) -> None:
        self._host = host
        self.role = role  # "uac" | "uas"
        self.call_id = call_id
        self.local = local
        self.remote = remote
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.remote_target = remote_target
        self.route_set = list(route_set)
        self.peer = peer
        self.local_sdp = local_sdp
        self.remote_sdp = remote_sdp
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.confirmed = asyncio.Event()  # the ACK for our 2xx arrived (UAS), or we sent ours (UAC)
        self.on_info: Callable[[Request], None] | None = None
        self._pending: _PendingAck | None = None
        self._ack: tuple[int, bytes] | None = None  # UAC: the ACK we sent for a 2xx
        self._bye_task: asyncio.Task[None] | None = None
        self._bye_received = False
        self._refer: asyncio.Future[ReferResult] | None = None
        self._refer_accepted = False

    # ---- identity ----------------------------------------------------------------

    @property
    def local_tag(self) -> str:
        return self.local.tag or ""

    @property
    def remote_tag(self) -> str:
        return self.remote.tag or ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    def __repr__(self) -> str:
        return f"<Dialog {self.role} {self.call_id} ended={self.end_reason}>"

    # ---- building and sending requests ---------------------------------------------

    def request_flow(self) -> Flow:
        """Where the next in-dialog request goes: ``peer``, unless that was a
        TCP connection which has closed since; then the route set / remote target."""
        peer = self.peer
        if peer.reliable and not self._host.transport.is_connected(peer):
            return reconnect_flow(self.remote_target, self.route_set, peer.transport) or peer
        return peer

    def new_request(
        self,
        method: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        flow: Flow | None = None,
    ) -> Request:
        """An in-dialog request with the next local CSeq (RFC 3261 §12.2.1.1)."""
        self.local_cseq += 1
        return self._build(method, self.local_cseq, headers, body, flow or self.request_flow())

    def _build(
        self,
        method: str,
        cseq: int,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        flow: Flow,
    ) -> Request:
        uri, routes = route_request(self.remote_target, self.route_set)
        hdrs = [
            ("Via", self._host.via(flow, new_branch())),
            ("Max-Forwards", "70"),
            ("From", str(self.local)),
            ("To", str(self.remote)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        hdrs += [("Route", r) for r in routes]
        if method in ("INVITE", "UPDATE", "REFER", "NOTIFY", "SUBSCRIBE"):
            hdrs.append(("Contact", self._host.contact(flow)))
        hdrs += self._host.extra_headers()
        hdrs += list(headers)
        return request(method, uri, hdrs, body)

    def send_ack(self, invite_cseq: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        """UAC: ACK a 2xx (a new transaction-less request, RFC 3261 §13.2.2.4)."""
        flow = self.request_flow()
        if self._ack is None or self._ack[0] != invite_cseq:
            ack = self._build("ACK", invite_cseq, headers, b"", flow)
            self._ack = (invite_cseq, ack.serialize())
        self._host.transport.send(self._ack[1], flow)
        self.confirmed.set()

    def resend_ack(self, response: Response) -> None:
        """A retransmitted 2xx: our ACK was lost."""
        if self._ack is not None and self._ack[0] == response.cseq.seq:
            self._host.transport.send(self._ack[1], self.request_flow())

    # ---- the UAS 2xx / ACK handshake (RFC 3261 §13.3.1.4) -------------------------

    def await_ack(self, response: Response, txn: ServerTransaction) -> None:
        """Retransmit our 2xx (UDP) until the ACK; BYE after 64*T1 without one."""
        self._stop_retransmitting()
        timers = self._host.timers
        loop = self._host.layer.loop
        pending = _PendingAck(
            data=response.serialize(),
            flow=self._host.transport.response_flow(response, txn.flow),
            cseq=response.cseq.seq,
            deadline=loop.time() + timers.b,
            interval=timers.t1,
        )
        self._pending = pending
        delay = timers.b if txn.flow.reliable else timers.t1
        pending.timer = loop.call_later(delay, self._retransmit_2xx)

    def _retransmit_2xx(self) -> None:
        pending = self._pending
        if pending is None:
            return
        loop = self._host.layer.loop
        now = loop.time()
        if now >= pending.deadline - 1e-3:
            self._stop_retransmitting()
            log.info("sip.ack_timeout", call_id=self.call_id)
            self._start_bye("ack-timeout")
            return
        if not pending.flow.reliable:
            self._host.transport.send(pending.data, pending.flow)
            pending.interval = min(pending.interval * 2, self._host.timers.t2)
        pending.timer = loop.call_later(
            min(pending.interval, pending.deadline - now), self._retransmit_2xx
        )

    def _stop_retransmitting(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            if pending.timer is not None:
                pending.timer.cancel()
            pending.acked.set()

    def handle_ack(self, req: Request) -> None:
        pending = self._pending
        if pending is not None and req.cseq.seq == pending.cseq:
            self._stop_retransmitting()
        self.confirmed.set()

    # ---- requests from the peer -------------------------------------------------

    def handle_request(self, req: Request, txn: ServerTransaction) -> None:
        host = self._host
        seq = req.cseq.seq
        if self.remote_cseq is not None and seq < self.remote_cseq:
            txn.respond(host.response(req, 500, "CSeq Out of Order"))
            return
        self.remote_cseq = seq
        method = req.method
        if method == "BYE":
            txn.respond(host.response(req, 200))
            self._bye_received = True
            self._stop_retransmitting()
            self._end("remote-bye")
            host.forget(self)
        elif method in ("INVITE", "UPDATE"):
            self._refresh(req, txn)
        elif method == "INFO":
            txn.respond(host.response(req, 200))
            if self.on_info is not None:
                try:
                    self.on_info(req)
                except Exception:
                    log.exception("sip.on_info_failed", call_id=self.call_id)
        elif method == "NOTIFY":
            self._notify(req, txn)
        elif method == "OPTIONS":
            host.answer_options(req, txn)
        else:
            txn.respond(host.response(req, 405, headers=[("Allow", ALLOW)]))

    def _refresh(self, req: Request, txn: ServerTransaction) -> None:
        """re-INVITE / UPDATE: a session refresh, answered with our same SDP."""
        host = self._host
        if req.method == "INVITE" and self._pending is not None:
            retry = str(secrets.randbelow(10))
            txn.respond(host.response(req, 500, headers=[("Retry-After", retry)]))
            return
        contact = req.contact
        if contact is not None:
            self.remote_target = str(contact.uri)
        headers = [("Contact", host.contact(self.peer)), ("Allow", ALLOW)]
        body = b""
        if req.method == "INVITE" or req.body:
            headers.append(("Content-Type", "application/sdp"))
            body = self.local_sdp
        response = host.response(req, 200, headers=headers, body=body)
        txn.respond(response)
        if req.method == "INVITE":
            self.await_ack(response, txn)

    # ---- BYE ---------------------------------------------------------------------

    async def bye(self) -> None:
        """Hang up (idempotent): ends the dialog now, returns once the BYE is answered."""
        if self._bye_task is None:
            if self.ended.is_set():
                return
            self._start_bye("local-bye")
        assert self._bye_task is not None
        await asyncio.shield(self._bye_task)

    def _start_bye(self, reason: str) -> None:
        if self._bye_task is None and not self.ended.is_set():
            self._end(reason)
            self._bye_task = self._host.spawn(self._send_bye())

    async def _send_bye(self) -> None:
        try:
            pending = self._pending
            if pending is not None:  # RFC 3261 §15: BYE only once our 2xx is ACKed
                remaining = pending.deadline - self._host.layer.loop.time()
                try:
                    await asyncio.wait_for(pending.acked.wait(), max(0.0, remaining))
                except TimeoutError:
                    self._stop_retransmitting()
            if self._bye_received:
                return
            flow = self.request_flow()
            req = self.new_request("BYE", flow=flow)
            try:
                response = await self._host.layer.request(req, flow)
                if response.status >= 300:
                    log.info("sip.bye_refused", call_id=self.call_id, status=response.status)
            except TransactionError as exc:
                log.info("sip.bye_unanswered", call_id=self.call_id, error=exc.detail)
        finally:
            self._host.forget(self)

    def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        refer = self._refer
        if refer is not None and not refer.done():
            if reason == "remote-bye" and self._refer_accepted:
                # the transferee took the call off our hands without a final NOTIFY
                detail = "REFER accepted, then the peer hung up before reporting the outcome"
                refer.set_result(ReferResult(True, None, detail))
            else:
                refer.set_result(ReferResult(False, None, f"dialog ended ({reason})"))

    def shutdown(self) -> None:
        """The endpoint is stopping: end without sending anything."""
        self._stop_retransmitting()
        self._end("shutdown")

    # ---- REFER (RFC 3515) --------------------------------------------------------

    async def refer(self, target: str, *, timeout_s: float = 30) -> ReferResult:
        """Ask the peer to call ``target``; follow the NOTIFY sipfrags to the end.

        ``ok`` once a sipfrag reports a 2xx (``status`` is that code), not ok on
        a ≥300 sipfrag, a refused REFER, or a timeout. A peer that accepts the
        REFER and then hangs up before any final NOTIFY counts as ok with
        ``status=None`` (the call has left our hands).
        """
        if self.ended.is_set():
            return ReferResult(False, None, "dialog already ended")
        if self._refer is not None and not self._refer.done():
            return ReferResult(False, None, "a transfer is already in progress")
        result: asyncio.Future[ReferResult] = self._host.layer.loop.create_future()
        self._refer = result
        self._refer_accepted = False
        refer_to = target if target.startswith("<") else f"<{target}>"
        flow = self.request_flow()
        req = self.new_request(
            "REFER", [("Refer-To", refer_to), ("Referred-By", f"<{self.local.uri}>")], flow=flow
        )
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    response = await self._host.layer.request(req, flow)
                except TransactionError as exc:
                    return ReferResult(False, None, f"REFER not answered: {exc.detail}")
                if response.status >= 300:
                    detail = f"REFER refused: {response.status} {response.reason}"
                    return ReferResult(False, response.status, detail)
                self._refer_accepted = True
                return await result
        except TimeoutError:
            return ReferResult(False, None, "transfer outcome not reported in time")
        finally:
            if self._refer is result:
                self._refer = None

    def _notify(self, req: Request, txn: ServerTransaction) -> None:
        host = self._host
        event = (req.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer":
            txn.respond(host.response(req, 489, "Bad Event"))
            return
        txn.respond(host.response(req, 200))
        result = self._refer
        if result is None or result.done():
            return
        status, line = sipfrag_status(req.body)
        state = (req.headers.get("Subscription-State") or "").strip().lower()
        if status is not None and status >= 200:
            result.set_result(ReferResult(200 <= status < 300, status, line))
        elif state.startswith("terminated"):
            detail = f"subscription ended without a final status ({line or state})"
            result.set_result(ReferResult(False, status, detail))


ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE"
