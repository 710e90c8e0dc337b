"""An INVITE we received and have not answered yet (the UAS side of call setup)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flireo.telephony.sip.dialog import ALLOW, Dialog
from flireo.telephony.sip.headers import NameAddr
from flireo.telephony.sip.ids import new_tag
from flireo.telephony.sip.message import Request
from flireo.telephony.sip.routing import dialog_peer
from flireo.telephony.sip.transaction import InviteServerTransaction
from flireo.telephony.sip.transport import Flow

if TYPE_CHECKING:
    from flireo.telephony.sip.ua import SipEndpoint


class CallCancelled(Exception):
    """The caller cancelled (or the endpoint stopped) before we answered."""


class IncomingCall:
    """A new INVITE: 100 Trying has gone out; send 180 and then answer or reject.

    ``cancelled`` is set when the caller CANCELs first (we have already sent
    200 to the CANCEL and 487 to the INVITE by then).
    """

    def __init__(
        self, endpoint: SipEndpoint, req: Request, source: Flow, txn: InviteServerTransaction
    ) -> None:
        self._endpoint = endpoint
        self.request = req
        self.source: tuple[str, int] = source.addr
        self.transport = source.transport
        self.flow = source
        self.to_tag = new_tag()
        self.cancelled = asyncio.Event()
        self._txn = txn
        self._dialog: Dialog | None = None

    @property
    def call_id(self) -> str:
        return self.request.call_id

    @property
    def remote_sdp(self) -> bytes:
        return self.request.body

    @property
    def finalized(self) -> bool:
        return self._txn.finalized or self.cancelled.is_set()

    def __repr__(self) -> str:
        return f"<IncomingCall {self.request.uri} from {self.source} call-id={self.call_id}>"

    # ---- provisional responses --------------------------------------------------

    async def trying(self) -> None:
        self._provisional(100)

    async def ringing(self) -> None:
        self._provisional(180)

    async def progress(self, sdp: bytes | None = None) -> None:
        """183 Session Progress, with early-media SDP when given."""
        headers = [("Content-Type", "application/sdp")] if sdp else []
        self._provisional(183, headers, sdp or b"")

    def _provisional(
        self, status: int, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        if self.finalized:
            return
        if status > 100:
            headers = [("Contact", self._endpoint.contact(self.flow)), *headers]
        response = self._endpoint.response(
            self.request, status, to_tag=self.to_tag, headers=headers, body=body
        )
        self._txn.respond(response)

    # ---- final responses ----------------------------------------------------------

    async def answer(self, sdp: bytes, *, headers: Sequence[tuple[str, str]] = ()) -> Dialog:
        """200 OK with our SDP answer; the dialog exists from now on (its
        ``confirmed`` event is set when the caller's ACK arrives)."""
        if self._dialog is not None:
            return self._dialog
        if self.cancelled.is_set():
            raise CallCancelled(f"call {self.call_id} was cancelled by the caller")
        if self._txn.finalized or self._txn.terminated:
            raise RuntimeError(f"call {self.call_id} was already rejected")
        ep = self._endpoint
        req = self.request
        contact = req.contact
        remote_target = str(contact.uri if contact is not None else req.from_.uri)
        route_set = req.headers.get_all("Record-Route")
        dialog = Dialog(
            ep,
            role="uas",
            call_id=req.call_id,
            local=NameAddr.parse(req.headers.get("To") or "").with_tag(self.to_tag),
            remote=req.from_,
            local_cseq=secrets.randbelow(1 << 16) + 1,
            remote_cseq=req.cseq.seq,
            remote_target=remote_target,
            route_set=route_set,
            peer=dialog_peer(self.flow, remote_target, route_set),
            local_sdp=sdp,
            remote_sdp=req.body,
        )
        response = ep.response(
            req,
            200,
            to_tag=self.to_tag,
            headers=[
                ("Contact", ep.contact(self.flow)),
                ("Allow", ALLOW),
                ("Content-Type", "application/sdp"),
                *headers,
            ],
            body=sdp,
        )
        ep.register(dialog)
        self._dialog = dialog
        self._txn.respond(response)
        ep.finished(self)
        dialog.await_ack(response, self._txn)
        return dialog

    async def reject(
        self,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """A final error response (no-op once cancelled or already rejected)."""
        if not 300 <= status <= 699:
            raise ValueError(f"reject needs a 3xx-6xx status, not {status}")
        if self._dialog is not None:
            raise RuntimeError(f"call {self.call_id} was already answered")
        if self.finalized:
            return
        self._txn.respond(
            self._endpoint.response(
                self.request, status, reason, to_tag=self.to_tag, headers=headers
            )
        )
        self._endpoint.finished(self)

    def cancel(self) -> None:
        """The caller's CANCEL matched: 487 to the INVITE (RFC 3261 §9.2)."""
        if self.finalized:
            return
        self._txn.respond(self._endpoint.response(self.request, 487, to_tag=self.to_tag))
        self.cancelled.set()
        self._endpoint.finished(self)
