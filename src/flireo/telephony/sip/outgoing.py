"""Placing a call (the UAC side of INVITE): provisional progress, digest
authentication on 401/407, CANCEL on timeout or when the caller gives up,
and the mapping of failures to a few outcome kinds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import structlog

from flireo.telephony.sip.dialog import ALLOW, Dialog
from flireo.telephony.sip.digest import Challenge, DigestError, authorize
from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import NameAddr
from flireo.telephony.sip.ids import new_branch, new_call_id, new_tag
from flireo.telephony.sip.message import Request, Response, request
from flireo.telephony.sip.routing import dialog_peer
from flireo.telephony.sip.transaction import (
    InviteClientTransaction,
    TransactionError,
)
from flireo.telephony.sip.transport import Flow
from flireo.telephony.sip.uri import SipUri

if TYPE_CHECKING:
    from flireo.telephony.sip.ua import SipEndpoint

log = structlog.get_logger(__name__)

DialFailureKind = Literal[
    "busy", "no-answer", "declined", "auth-failed", "failed", "timeout", "cancelled"
]


class DialFailed(Exception):
    """The INVITE did not lead to an answered call."""

    def __init__(self, status: int | None, reason: str, kind: DialFailureKind) -> None:
        super().__init__(f"{kind}: {status or '-'} {reason}")
        self.status = status
        self.reason = reason
        self.kind: DialFailureKind = kind


def failure_kind(status: int, *, authenticated: bool = False) -> DialFailureKind:
    """What a final error response means to the caller."""
    if status in (486, 600):
        return "busy"
    if status in (408, 480):
        return "no-answer"
    if status in (603, 607, 608):
        return "declined"
    if status in (401, 407) or (status == 403 and authenticated):
        return "auth-failed"
    if status == 487:
        return "cancelled"
    return "failed"


ProgressCallback = Callable[[int, str], None]


class OutgoingInvite:
    """One INVITE attempt chain (the first and, after a challenge, the
    authenticated one) until a dialog or a :class:`DialFailed`."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        target: SipUri,
        from_addr: NameAddr,
        sdp_offer: bytes,
        flow: Flow,
        credentials: tuple[str, str] | None,
        on_progress: ProgressCallback | None,
        headers: Sequence[tuple[str, str]],
    ) -> None:
        self._ep = endpoint
        self.target = target
        self.flow = flow
        self.call_id = new_call_id()
        self.local = from_addr.with_tag(new_tag())
        self.remote = NameAddr(target)
        self.cseq = 1
        self.sdp = sdp_offer
        self._credentials = credentials
        self._on_progress = on_progress
        self._extra = list(headers)
        self._auth: list[tuple[str, str]] = []
        self._queue: asyncio.Queue[Response | TransactionError] = asyncio.Queue()
        self.invite: Request | None = None
        self._ict: InviteClientTransaction | None = None
        self.dialog: Dialog | None = None
        self._cancel_wanted = False
        self._cancel_sent = False
        self._abandoned = False
        self._alerted = False  # a 18x came: the far end is ringing

    # ---- the coroutine ----------------------------------------------------------

    async def run(self, timeout_s: float) -> Dialog:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._send_invite()
        try:
            while True:
                wait = None if self._cancel_wanted else max(0.0, deadline - loop.time())
                try:
                    item = await asyncio.wait_for(self._queue.get(), wait)
                except TimeoutError:
                    self._request_cancel()
                    continue
                if isinstance(item, TransactionError):
                    raise self._error_failure(item)
                status = item.status
                if status < 200:
                    self._progress(item)
                    continue
                if status < 300:
                    dialog = self.dialog
                    assert dialog is not None
                    if self._cancel_wanted:  # answered while we were cancelling
                        self._ep.spawn(dialog.bye())
                        raise DialFailed(status, "answered after CANCEL", self._timeout_kind())
                    return dialog
                if status in (401, 407) and self._retry_with_auth(item):
                    continue
                raise self._response_failure(item)
        except asyncio.CancelledError:
            self._abandoned = True
            self._request_cancel()
            raise

    def _progress(self, response: Response) -> None:
        if response.status >= 180:
            self._alerted = True
        if self._on_progress is not None:
            try:
                self._on_progress(response.status, response.reason)
            except Exception:
                log.exception("sip.on_progress_failed", call_id=self.call_id)

    def _timeout_kind(self) -> DialFailureKind:
        return "no-answer" if self._alerted else "timeout"

    def _response_failure(self, response: Response) -> DialFailed:
        status = response.status
        if self._cancel_wanted and status == 487:
            return DialFailed(status, "no answer before the dial timeout", self._timeout_kind())
        kind = failure_kind(status, authenticated=bool(self._auth))
        return DialFailed(status, response.reason, kind)

    def _error_failure(self, error: TransactionError) -> DialFailed:
        if error.kind == "timeout":
            kind = self._timeout_kind() if self._cancel_wanted else "timeout"
            return DialFailed(None, error.detail, kind)
        return DialFailed(None, error.detail, "failed")

    # ---- messages -----------------------------------------------------------------

    def _send_invite(self) -> None:
        ep = self._ep
        # a B2BUA leg passes the caller's Max-Forwards on, decremented (loop detection)
        max_forwards = next((v for k, v in self._extra if k.lower() == "max-forwards"), "70")
        headers = [
            ("Via", ep.via(self.flow, new_branch())),
            ("Max-Forwards", max_forwards),
            ("From", str(self.local)),
            ("To", str(self.remote)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} INVITE"),
            ("Contact", ep.contact(self.flow)),
            ("Allow", ALLOW),
            *ep.extra_headers(),
            *self._auth,
            *((k, v) for k, v in self._extra if k.lower() != "max-forwards"),
        ]
        if self.sdp:
            headers.append(("Content-Type", "application/sdp"))
        self.invite = request("INVITE", str(self.target), headers, self.sdp)
        txn = ep.layer.send_request(self.invite, self.flow, self._on_response, self._on_error)
        assert isinstance(txn, InviteClientTransaction)
        self._ict = txn

    def _retry_with_auth(self, response: Response) -> bool:
        """Answer a 401/407 once with digest credentials (RFC 3261 §22.2)."""
        if self._credentials is None or self._auth or self.invite is None:
            return False
        challenge_header, auth_header = (
            ("WWW-Authenticate", "Authorization")
            if response.status == 401
            else ("Proxy-Authenticate", "Proxy-Authorization")
        )
        username, password = self._credentials
        for value in response.headers.get_all(challenge_header):
            try:
                challenge = Challenge.parse(value)
                answer = authorize(
                    challenge,
                    method="INVITE",
                    uri=self.invite.uri,
                    username=username,
                    password=password,
                )
            except (DigestError, SipParseError):
                continue
            self._auth = [(auth_header, answer)]
            self.cseq += 1
            self._send_invite()
            return True
        return False

    def _request_cancel(self) -> None:
        """Give up on the INVITE: CANCEL once a provisional came (RFC 3261 §9.1)."""
        if self._cancel_wanted:
            return
        self._cancel_wanted = True
        ict = self._ict
        if ict is None or ict.state not in ("calling", "proceeding"):
            return
        if ict.state == "proceeding":
            self._send_cancel()
        ict.give_up_after(self._ep.timers.b)

    def _send_cancel(self) -> None:
        invite = self.invite
        if self._cancel_sent or invite is None:
            return
        self._cancel_sent = True
        headers = [
            ("Via", invite.headers.get_all("Via")[0]),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq.seq} CANCEL"),
            *[("Route", r) for r in invite.headers.get_all("Route")],
            *self._ep.extra_headers(),
        ]
        cancel = request("CANCEL", invite.uri, headers)
        self._ep.layer.send_request(cancel, self.flow, _ignore, _ignore)

    # ---- transaction callbacks (synchronous) -------------------------------------

    def _on_response(self, response: Response) -> None:
        status = response.status
        if status < 200:
            if self._cancel_wanted:
                self._send_cancel()
        elif status < 300:
            dialog = self.dialog
            if dialog is not None and response.to.tag == dialog.remote_tag:
                dialog.resend_ack(response)
                return
            answered = self._make_dialog(response)
            answered.send_ack(response.cseq.seq, self._auth)
            if dialog is not None or self._abandoned:
                # a second answer of a forked INVITE, or one after we gave up
                self._ep.spawn(answered.bye())
                return
            self.dialog = answered
            self._ep.register(answered)
        if not self._abandoned:
            self._queue.put_nowait(response)

    def _on_error(self, error: TransactionError) -> None:
        if not self._abandoned:
            self._queue.put_nowait(error)

    def _make_dialog(self, response: Response) -> Dialog:
        contact = response.contact
        remote_target = str(contact.uri) if contact is not None else str(self.target)
        route_set = list(reversed(response.headers.get_all("Record-Route")))
        return Dialog(
            self._ep,
            role="uac",
            call_id=self.call_id,
            local=self.local,
            remote=response.to,
            local_cseq=self.cseq,
            remote_cseq=None,
            remote_target=remote_target,
            route_set=route_set,
            peer=dialog_peer(self.flow, remote_target, route_set),
            local_sdp=self.sdp,
            remote_sdp=response.body,
        )


def _ignore(_: object) -> None:
    return None
