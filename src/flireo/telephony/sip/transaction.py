"""SIP transactions (RFC 3261 §17, with the Accepted states of RFC 6026).

Four state machines: INVITE client (timers A, B, D, M), non-INVITE client (E, F,
K), INVITE server (G, H, I, L) and non-INVITE server (J). Each transaction has
at most one timer handle: the next retransmission and the give-up deadline are
folded into one ``call_later``. Retransmissions happen only on UDP; on TCP the
wait timers D, I, J and K are zero.

The layer keeps client transactions in a dict keyed by (branch, method) and
server transactions by (branch, sent-by, method), so matching a message is
one lookup whatever the number of calls in progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from flireo.telephony.sip.ids import MAGIC_COOKIE
from flireo.telephony.sip.message import Request, Response, request
from flireo.telephony.sip.transport import Flow, SipTransport

_EPS = 1e-3

ServerKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 timer values; ``Timers.scaled(t1)`` keeps T2 and T4 in proportion
    so tests can run the whole machinery fast."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @classmethod
    def scaled(cls, t1: float) -> Timers:
        return cls(t1, 8 * t1, 10 * t1)

    @property
    def b(self) -> float:
        """64*T1: timers B, F, H, J, L, M and the 2xx-without-ACK limit."""
        return 64 * self.t1


class TransactionError(Exception):
    """A client transaction ended without a final response."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # "timeout" | "transport" | "shutdown"
        self.detail = detail


ResponseHandler = Callable[[Response], None]
ErrorHandler = Callable[[TransactionError], None]


class _Transaction:
    def __init__(
        self, layer: TransactionLayer, key: tuple[str, ...], req: Request, flow: Flow
    ) -> None:
        self.layer = layer
        self.key = key
        self.request = req
        self.flow = flow
        self.state = "new"
        self._timer: asyncio.TimerHandle | None = None

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.layer.loop.call_later(max(0.0, delay), callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _terminate(self) -> None:
        if self.state == "terminated":
            return
        self.state = "terminated"
        self._disarm()
        self.layer._forget(self)


# ---- client side ---------------------------------------------------------------


class ClientTransaction(_Transaction):
    def __init__(
        self,
        layer: TransactionLayer,
        key: tuple[str, ...],
        req: Request,
        flow: Flow,
        on_response: ResponseHandler,
        on_error: ErrorHandler,
    ) -> None:
        super().__init__(layer, key, req, flow)
        self.on_response = on_response
        self.on_error = on_error
        self._data = req.serialize()
        self._deadline = 0.0
        self._interval = layer.timers.t1

    def start(self) -> None:
        raise NotImplementedError

    def receive(self, response: Response) -> None:
        raise NotImplementedError

    def _send(self) -> None:
        self.layer.transport.send(self._data, self.flow, self._transport_error)

    def _transport_error(self, detail: str) -> None:
        if self.state in ("calling", "trying", "proceeding"):
            self.fail(TransactionError("transport", detail))

    def fail(self, error: TransactionError) -> None:
        if self.terminated:
            return
        self._terminate()
        self.on_error(error)


class InviteClientTransaction(ClientTransaction):
    """Calling → Proceeding → Accepted (2xx) / Completed (≥300, we ACK) → Terminated."""

    _ack: bytes | None = None
    _give_up_at: float | None = None

    def start(self) -> None:
        self.state = "calling"
        timers = self.layer.timers
        self._deadline = self.layer.loop.time() + timers.b
        self._send()
        self._arm(timers.b if self.flow.reliable else timers.t1, self._tick)

    def give_up_after(self, seconds: float) -> None:
        """After a CANCEL: end with a timeout if no final response comes
        within ``seconds`` (RFC 3261 §9.1), even once provisionals arrived."""
        self._give_up_at = self.layer.loop.time() + seconds
        if self.state == "proceeding":
            self._arm(seconds, self._tick)

    def _tick(self) -> None:
        now = self.layer.loop.time()
        if self.state == "calling":
            deadline = min(self._deadline, self._give_up_at or self._deadline)
            if now >= deadline - _EPS:
                self.fail(TransactionError("timeout", "no response to INVITE (timer B)"))
                return
            if self.flow.reliable:
                self._arm(deadline - now, self._tick)
                return
            self._send()  # timer A
            self._interval *= 2
            self._arm(min(self._interval, deadline - now), self._tick)
        elif self.state == "proceeding":
            self.fail(TransactionError("timeout", "no final response after CANCEL"))
        else:  # timer D (Completed) or M (Accepted)
            self._terminate()

    def receive(self, response: Response) -> None:
        status = response.status
        if status < 200:
            if self.state == "calling":
                self.state = "proceeding"
                self._disarm()
                if self._give_up_at is not None:
                    self._arm(self._give_up_at - self.layer.loop.time(), self._tick)
            if self.state == "proceeding":
                self.on_response(response)
        elif status < 300:
            if self.state in ("calling", "proceeding"):
                self.state = "accepted"
                self._arm(self.layer.timers.b, self._tick)
                self.on_response(response)
            elif self.state == "accepted":
                self.on_response(response)  # retransmitted 2xx: the TU re-sends its ACK
        elif self.state in ("calling", "proceeding"):
            self.state = "completed"
            self._ack = self._build_ack(response)
            self.layer.transport.send(self._ack, self.flow)
            self._arm(0.0 if self.flow.reliable else self.layer.timers.b, self._tick)
            self.on_response(response)
        elif self.state == "completed" and self._ack is not None:
            self.layer.transport.send(self._ack, self.flow)

    def _build_ack(self, response: Response) -> bytes:
        """ACK for a non-2xx final (RFC 3261 §17.1.1.3)."""
        req = self.request
        headers = [
            ("Via", req.headers.get_all("Via")[0]),
            ("Max-Forwards", "70"),
            ("From", req.headers.get("From") or ""),
            ("To", response.headers.get("To") or ""),
            ("Call-ID", req.call_id),
            ("CSeq", f"{req.cseq.seq} ACK"),
        ]
        headers += [("Route", r) for r in req.headers.get_all("Route")]
        return request("ACK", req.uri, headers).serialize()


class NonInviteClientTransaction(ClientTransaction):
    """Trying → Proceeding → Completed → Terminated (timers E, F, K)."""

    def start(self) -> None:
        self.state = "trying"
        timers = self.layer.timers
        self._deadline = self.layer.loop.time() + timers.b
        self._send()
        self._arm(timers.b if self.flow.reliable else timers.t1, self._tick)

    def _tick(self) -> None:
        if self.state not in ("trying", "proceeding"):
            self._terminate()  # timer K
            return
        now = self.layer.loop.time()
        if now >= self._deadline - _EPS:
            self.fail(TransactionError("timeout", f"no final response to {self.request.method}"))
            return
        if self.flow.reliable:
            self._arm(self._deadline - now, self._tick)
            return
        self._send()  # timer E
        t2 = self.layer.timers.t2
        self._interval = t2 if self.state == "proceeding" else min(self._interval * 2, t2)
        self._arm(min(self._interval, self._deadline - now), self._tick)

    def receive(self, response: Response) -> None:
        if self.state not in ("trying", "proceeding"):
            return  # a retransmitted final: absorbed
        if response.status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self._arm(0.0 if self.flow.reliable else self.layer.timers.t4, self._tick)
        self.on_response(response)


# ---- server side ---------------------------------------------------------------


class ServerTransaction(_Transaction):
    def __init__(
        self, layer: TransactionLayer, key: tuple[str, ...], req: Request, flow: Flow
    ) -> None:
        super().__init__(layer, key, req, flow)
        self.last_response: Response | None = None
        self._last: tuple[bytes, Flow] | None = None

    @property
    def finalized(self) -> bool:
        return self.last_response is not None and self.last_response.status >= 200

    def respond(self, response: Response) -> bool:
        """Send ``response``; False (and nothing sent) once a final went out."""
        raise NotImplementedError

    def receive(self, req: Request) -> bool:
        """A retransmission or ACK matched us: True when the TU must see it."""
        raise NotImplementedError

    def _send(self, response: Response) -> None:
        transport = self.layer.transport
        self.last_response = response
        self._last = (response.serialize(), transport.response_flow(response, self.flow))
        transport.send(*self._last)

    def _resend(self) -> None:
        if self._last is not None:
            self.layer.transport.send(*self._last)


class InviteServerTransaction(ServerTransaction):
    """Proceeding → Accepted (2xx) / Completed (≥300) → Confirmed → Terminated."""

    def __init__(
        self, layer: TransactionLayer, key: tuple[str, ...], req: Request, flow: Flow
    ) -> None:
        super().__init__(layer, key, req, flow)
        self.state = "proceeding"
        self._deadline = 0.0
        self._interval = layer.timers.t1
        self.on_ack_timeout: Callable[[], None] | None = None

    def respond(self, response: Response) -> bool:
        if self.state != "proceeding":
            return False
        self._send(response)
        timers = self.layer.timers
        if 200 <= response.status < 300:
            self.state = "accepted"
            self._arm(timers.b, self._tick)  # timer L
        elif response.status >= 300:
            self.state = "completed"
            self._deadline = self.layer.loop.time() + timers.b  # timer H
            self._arm(timers.b if self.flow.reliable else timers.t1, self._tick)
        return True

    def _tick(self) -> None:
        if self.state != "completed":
            self._terminate()  # timers I and L
            return
        now = self.layer.loop.time()
        if now >= self._deadline - _EPS:
            self._terminate()  # timer H: the ACK never came
            if self.on_ack_timeout is not None:
                self.on_ack_timeout()
            return
        if self.flow.reliable:
            self._arm(self._deadline - now, self._tick)
            return
        self._resend()  # timer G
        self._interval = min(self._interval * 2, self.layer.timers.t2)
        self._arm(min(self._interval, self._deadline - now), self._tick)

    def receive(self, req: Request) -> bool:
        if req.method == "ACK":
            if self.state == "completed":
                self.state = "confirmed"
                self._arm(0.0 if self.flow.reliable else self.layer.timers.t4, self._tick)
                return False
            return self.state == "accepted"  # an ACK for our 2xx reusing the branch
        if self.state in ("proceeding", "completed"):
            self._resend()
        return False


class NonInviteServerTransaction(ServerTransaction):
    """Trying → Proceeding → Completed → Terminated (timer J)."""

    def __init__(
        self, layer: TransactionLayer, key: tuple[str, ...], req: Request, flow: Flow
    ) -> None:
        super().__init__(layer, key, req, flow)
        self.state = "trying"

    def respond(self, response: Response) -> bool:
        if self.state not in ("trying", "proceeding"):
            return False
        self._send(response)
        if response.status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self._arm(0.0 if self.flow.reliable else self.layer.timers.b, self._terminate)
        return True

    def receive(self, req: Request) -> bool:
        if self.state in ("proceeding", "completed"):
            self._resend()
        return False


# ---- the layer -----------------------------------------------------------------


def server_key(req: Request) -> ServerKey:
    """RFC 3261 §17.2.3: branch + sent-by + method (ACK and CANCEL look up the
    INVITE with ``method="INVITE"``); RFC 2543 peers without the magic cookie
    are matched on Call-ID, From tag, CSeq number and top Via instead."""
    via = req.top_via
    method = "INVITE" if req.method == "ACK" else req.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        host, port = via.sent_by
        return (branch, host, str(port), method)
    return ("2543", req.call_id, req.from_.tag or "", str(req.cseq.seq), str(via), method)


def _identity(req: Request) -> tuple[str, str, int, str]:
    cseq = req.cseq
    return req.call_id, req.from_.tag or "", cseq.seq, cseq.method


def invite_key_for_cancel(cancel: Request) -> ServerKey:
    return (*server_key(cancel)[:-1], "INVITE")


class TransactionLayer:
    def __init__(self, transport: SipTransport, timers: Timers) -> None:
        self.transport = transport
        self.timers = timers
        self.loop = asyncio.get_running_loop()
        self._clients: dict[tuple[str, ...], ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}
        # requests without a To tag by (Call-ID, From tag, CSeq): merged-request check
        self._originals: dict[tuple[str, str, int, str], ServerKey] = {}

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    # client side
    def send_request(
        self,
        req: Request,
        flow: Flow,
        on_response: ResponseHandler,
        on_error: ErrorHandler,
    ) -> ClientTransaction:
        if req.method == "ACK":
            raise ValueError("ACK is sent without a transaction")
        key = (req.top_via.branch or "", req.method)
        cls = InviteClientTransaction if req.method == "INVITE" else NonInviteClientTransaction
        txn = cls(self, key, req, flow, on_response, on_error)
        self._clients[key] = txn
        txn.start()
        return txn

    async def request(
        self,
        req: Request,
        flow: Flow,
        on_provisional: ResponseHandler | None = None,
    ) -> Response:
        """Send a non-INVITE request; the final response (raises TransactionError)."""
        future: asyncio.Future[Response] = self.loop.create_future()

        def on_response(response: Response) -> None:
            if response.status < 200:
                if on_provisional is not None:
                    on_provisional(response)
            elif not future.done():
                future.set_result(response)

        def on_error(error: TransactionError) -> None:
            if not future.done():
                future.set_exception(error)

        self.send_request(req, flow, on_response, on_error)
        return await future

    def sent_invite(self, branch: str) -> bool:
        """Whether an INVITE client transaction of ours has this branch (loop detection)."""
        return (branch, "INVITE") in self._clients

    def receive_response(self, response: Response) -> bool:
        """Hand a response to its client transaction; False for a stray one."""
        key = (response.top_via.branch or "", response.cseq.method)
        txn = self._clients.get(key)
        if txn is None:
            return False
        txn.receive(response)
        return True

    # server side
    def match(self, req: Request) -> ServerTransaction | None:
        return self._servers.get(server_key(req))

    def find(self, key: ServerKey) -> ServerTransaction | None:
        return self._servers.get(key)

    def create_server(self, req: Request, flow: Flow) -> ServerTransaction:
        key = server_key(req)
        txn: ServerTransaction
        if req.method == "INVITE":
            txn = InviteServerTransaction(self, key, req, flow)
        else:
            txn = NonInviteServerTransaction(self, key, req, flow)
        self._servers[key] = txn
        if req.to.tag is None:
            self._originals.setdefault(_identity(req), key)
        return txn

    def is_merged(self, req: Request) -> bool:
        """RFC 3261 §8.2.2.2: the same request (no To tag) reached us by another path."""
        original = self._originals.get(_identity(req))
        return original is not None and original != server_key(req)

    def _forget(self, txn: _Transaction) -> None:
        if isinstance(txn, ClientTransaction):
            if self._clients.get(txn.key) is txn:
                del self._clients[txn.key]
            return
        if self._servers.get(txn.key) is txn:
            del self._servers[txn.key]
        req = txn.request
        if req.to.tag is None:
            ident = _identity(req)
            if self._originals.get(ident) == txn.key:
                del self._originals[ident]

    def shutdown(self) -> None:
        for client in list(self._clients.values()):
            client.fail(TransactionError("shutdown", "SIP endpoint stopped"))
        for server in list(self._servers.values()):
            server._terminate()
        self._clients.clear()
        self._servers.clear()
        self._originals.clear()
