"""Real phone calls: the platform's side of the SIP endpoint.

:class:`SipGateway` owns the process's :class:`~flireo.telephony.sip.ua.SipEndpoint`
and connects it to the store and the engine:

- **inbound**: the edge guard (scanner user agents dropped, INVITE floods
  banned, trunk addresses exempt) → 100/180 → :func:`admit_inbound` (number,
  trunk IP pinning, balance, assistant-request) → SDP negotiation → 200 OK →
  RTP both ways → :class:`CallRunner` runs the conversation until a BYE from
  either side;
- **outbound** (the :class:`~flireo.services.dialer.Dialer` behind
  ``POST /calls/outbound`` and campaigns): INVITE through the number's trunk with
  digest credentials, ``ringing`` on 180/183, dial failures mapped to final
  statuses and ``ended_reason``s, then the same conversation on answer;
- **transfer**: REFER to the far end (202 + NOTIFY sipfrag tracked); when the
  peer refuses REFER, a new INVITE through the trunk and the two calls' media
  bridged until either side hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from flireo.domain.calls import DialEndedReason, SetupEndedReason
from flireo.engine.transport import TransferResult
from flireo.media.frames import SAMPLE_RATE
from flireo.media.resample import resample_all
from flireo.providers.tts.local_piper import PiperTTS
from flireo.security.egress import UnsafeUrl, check_sip_address, check_sip_host
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.call_runner import CallRunner, CallSetupError, PreparedCall
from flireo.services.container import Services
from flireo.services.dial_policy import transfer_refusal
from flireo.services.inbound import admit_inbound, trunk_ips
from flireo.services.setup_failures import end_failed_setup
from flireo.services.targets import own_sip, sip_hop
from flireo.services.transfer_updates import record_transfer_update
from flireo.settings import Settings
from flireo.store.tables import Call, PhoneNumber, SipTrunk
from flireo.telephony.media_transport import SipMediaTransport
from flireo.telephony.rtp import srtp
from flireo.telephony.rtp.dtmf import info_body, parse_info_body
from flireo.telephony.rtp.packet import RtpPacket
from flireo.telephony.rtp.ports import PortAllocator
from flireo.telephony.rtp.session import RtpSession
from flireo.telephony.sip import sdp
from flireo.telephony.sip.guard import SourceGuard, ip_in, is_scanner
from flireo.telephony.sip.headers import parse_any_uri
from flireo.telephony.sip.message import Request
from flireo.telephony.sip.routing import next_hop, resolve
from flireo.telephony.sip.tls import contexts as tls_contexts
from flireo.telephony.sip.transport import Flow
from flireo.telephony.sip.ua import (
    DROP,
    CallCancelled,
    DialFailed,
    Dialog,
    IncomingCall,
    SipEndpoint,
)
from flireo.telephony.sip.uri import SipUri

log = structlog.get_logger(__name__)

#: what we offer and accept: G.711 μ-law, A-law, RFC 4733 digits
CODECS = (sdp.PCMU, sdp.PCMA)
DTMF_PT = 101
#: how often the set of trunk addresses exempt from the flood ban is re-read
_TRUNK_REFRESH_S = 30.0
#: how long stop() lets live calls wind down (final message, BYE, record)
_STOP_DEADLINE_S = 15.0
#: how a failed INVITE ends the call record (status ``failed``)
_DIAL_FAILURES = {
    "busy": DialEndedReason.BUSY,
    "declined": DialEndedReason.BUSY,
    "no-answer": DialEndedReason.NO_ANSWER,
    "timeout": DialEndedReason.NO_ANSWER,
    "cancelled": DialEndedReason.NO_ANSWER,
    "auth-failed": DialEndedReason.AUTH_FAILED,
    "failed": DialEndedReason.FAILED,
}


@dataclass
class Trunk:
    """A trunk's dialing parameters, password decrypted."""

    host: str
    port: int
    transport: str
    username: str | None
    password: str | None
    #: off / optional / mandatory: mandatory offers SRTP (RTP/SAVP) only
    srtp: str = "optional"

    def uri(self, number: str) -> str:
        user = number.replace(" ", "")
        suffix = {"tcp": ";transport=tcp", "tls": ";transport=tls"}.get(self.transport.lower(), "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sip:{user}@{host}:{self.port}{suffix}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        if self.username and self.password:
            return self.username, self.password
        return None


@dataclass
class Leg:
    """One live SIP call of this process and its media."""

    call_id: str
    dialog: Dialog
    rtp: RtpSession
    trunk: Trunk | None
    transport: SipMediaTransport | None = None
    #: the trunk to load when a transfer needs it (inbound calls: not read at set-up)
    trunk_id: str | None = None
    #: set when a trunk transfer bridged this leg to another call
    bridged: bool = False
    #: the caller's Max-Forwards: a leg we place for this call carries it on, minus one
    max_forwards: int = 70
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _tls_options(settings: Settings) -> dict[str, Any]:
    """The endpoint's TLS contexts from the ``FLIREO_SIP_TLS_*`` settings."""
    server, client = tls_contexts(
        settings.sip_tls_cert_file,
        settings.sip_tls_key_file,
        settings.sip_tls_ca_file,
        verify=settings.sip_tls_verify,
    )
    return {"tls_server": server, "tls_client": client, "tls_port": settings.sip_tls_port}


def _max_forwards(req: Request) -> int:
    try:
        return max(0, min(70, int(req.headers.get("Max-Forwards") or 70)))
    except ValueError:
        return 70


def _storable(user: str) -> bool:
    """A URI user we may look up and store: at most 64 characters, no raw bytes
    that are not UTF-8 (the parser keeps them as surrogates), no NUL or other
    control characters (PostgreSQL refuses NUL in text)."""
    return len(user) <= 64 and all(
        " " <= c != "\x7f" and not "\ud800" <= c <= "\udfff" for c in user
    )


def dialed_user(req: Request) -> str:
    """The number the caller dialed: the Request-URI user, else the To user
    ("" when it cannot be a number of ours: the call gets 404)."""
    for candidate in (req.uri, str(req.to.uri)):
        uri = parse_any_uri(str(candidate))
        if isinstance(uri, SipUri) and uri.user:
            return uri.user if _storable(uri.user) else ""
    return ""


def caller_number(req: Request) -> str | None:
    uri = req.from_.uri
    if isinstance(uri, SipUri) and uri.user and _storable(uri.user):
        user = uri.user
        return user if user.startswith("+") or not user.isdigit() else f"+{user}"
    return None


class SipGateway:
    def __init__(
        self,
        services: Services,
        lifecycle: CallLifecycle,
        runner: CallRunner,
        *,
        endpoint: SipEndpoint | None = None,
        ports: PortAllocator | None = None,
        rtp_host: str | None = None,
        on_rtp_sent: Callable[[str, RtpPacket], None] | None = None,
    ) -> None:
        """``on_rtp_sent(call_id, packet)`` observes every RTP packet sent to a
        caller (recording, tests)."""
        settings = services.settings
        self.svc, self.lifecycle, self.runner = services, lifecycle, runner
        self.endpoint = endpoint or SipEndpoint(
            host=settings.sip_host,
            port=settings.sip_port,
            tcp=settings.sip_tcp,
            t1=settings.sip_t1,
            public_host=settings.sip_public_host,
            **_tls_options(settings),
        )
        self.ports = ports or PortAllocator(
            settings.rtp_port_min,
            settings.rtp_port_max,
            start=secrets.choice(range(settings.rtp_port_min, settings.rtp_port_max)),
        )
        self.rtp_host = rtp_host or settings.sip_host
        self.guard = SourceGuard(
            limit=settings.sip_invite_limit,
            window_s=settings.sip_invite_window_seconds,
            ban_s=settings.sip_ban_seconds,
            clock=time.monotonic,
        )
        self.legs: dict[str, Leg] = {}
        self._trunk_ips: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._tts: PiperTTS | None = None
        self._on_rtp_sent = on_rtp_sent
        #: SIGTERM drain (cluster/drain.py): new INVITEs and OPTIONS get 503
        self.draining = False

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self.endpoint.on_invite = self._on_invite
        self.endpoint.on_request_filter = self._filter
        self.endpoint.flow_check = self._check_flow
        self.endpoint.options_headers = self._load_headers
        self._trunk_ips = await trunk_ips(self.svc)
        await self.endpoint.start()
        self._refresher = asyncio.create_task(self._refresh_trunks(), name="sip-trunk-ips")

    async def stop(self) -> None:
        """Hang up every live call (each ends once, through its runner: the record
        says ``call-cancelled`` and the caller gets a BYE), then stop listening."""
        if self._refresher is not None:
            self._refresher.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_DEADLINE_S)
        await self.endpoint.stop()

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sip call task failed", task=task.get_name(), error=repr(task.exception()))

    async def _refresh_trunks(self) -> None:
        while True:
            await asyncio.sleep(_TRUNK_REFRESH_S)
            with contextlib.suppress(Exception):
                self._trunk_ips = await trunk_ips(self.svc)

    @property
    def live_calls(self) -> int:
        """Calls this gateway is setting up or running."""
        return len(self._tasks)

    def _load_headers(self) -> list[tuple[str, str]]:
        node = self.svc.settings.node_id
        return [("X-Flireo-Node", node), ("X-Flireo-Live-Calls", str(self.live_calls))]

    # --- the edge ---------------------------------------------------------------------------
    def _filter(self, req: Request, source: tuple[str, int]) -> int | None:
        if is_scanner(req.headers.get("User-Agent")):
            return DROP
        if self.draining and req.method in ("INVITE", "OPTIONS") and req.to.tag is None:
            return 503  # the dispatcher takes this worker out; in-dialog requests go on
        if req.method != "INVITE":
            return None
        exempt = source[0] in self._trunk_ips or ip_in(source[0], self._trunk_ips)
        decision = self.guard.check(source[0], exempt=exempt)
        return None if decision.allowed else DROP

    # --- inbound --------------------------------------------------------------------------
    async def _on_invite(self, incoming: IncomingCall) -> None:
        task = asyncio.current_task()
        if task is not None:  # stop() hangs up the calls it owns before the endpoint goes
            self._tasks.add(task)
        try:
            await self._inbound(incoming)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _inbound(self, incoming: IncomingCall) -> None:
        req = incoming.request
        await incoming.ringing()
        admission = await admit_inbound(
            self.svc,
            self.lifecycle,
            dialed=dialed_user(req),
            caller=caller_number(req),
            source_ip=incoming.source[0],
        )
        if not admission.answer:
            await incoming.reject(admission.status, admission.reason)
            return
        call_id = admission.call_id
        assert call_id is not None
        step = "sdp"
        try:
            try:
                negotiated = sdp.negotiate(
                    sdp.parse_audio(incoming.remote_sdp), CODECS, srtp=self.svc.settings.sip_srtp
                )
            except ValueError as exc:
                await incoming.reject(488, "Not Acceptable Here")
                await self._fail(call_id, SetupEndedReason.INCOMPATIBLE_SDP, f"SDP: {exc}")
                return
            if admission.reject_message is not None:
                step = "media"
                leg = await self._answer(incoming, call_id, negotiated, trunk=None)
                if leg is not None:
                    await self._say_and_hang_up(leg, admission.reject_message)
                return
            step = "vendor preparation"
            try:
                prepared = await self.runner.prepare(call_id, rows=admission.rows)
            except CallSetupError as exc:
                await incoming.reject(503, "Service Unavailable")
                await self.runner.fail(call_id, exc.ended_reason, exc.error, answered=False)
                return
            step = "media"
            leg = await self._answer(incoming, call_id, negotiated, trunk=None)
            if leg is None:
                return
        except BaseException as exc:  # every set-up failure ends the record once
            failure = await asyncio.shield(
                end_failed_setup(self.lifecycle, call_id, exc, step=step)
            )
            if not incoming.finalized:
                with contextlib.suppress(Exception):
                    await incoming.reject(failure.sip_status, failure.sip_reason)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        leg.trunk_id = admission.trunk_id
        leg.max_forwards = _max_forwards(req)
        await self._converse(leg, prepared=prepared)

    async def _answer(
        self,
        incoming: IncomingCall,
        call_id: str,
        negotiated: sdp.Negotiated,
        *,
        trunk: Trunk | None,
    ) -> Leg | None:
        rtp = self._rtp(negotiated, call_id)
        try:
            port = await rtp.bind()
            answer = sdp.build(
                host=self.endpoint.advertised_host(incoming.flow),
                port=port,
                session_id=secrets.randbits(31),
                version=1,
                codecs=(negotiated.codec_pt,),
                dtmf_pt=negotiated.dtmf_pt,
                proto=negotiated.proto,
                crypto=(negotiated.crypto,) if negotiated.crypto is not None else (),
            )
            dialog = await incoming.answer(answer)
        except BaseException as exc:
            rtp.close()
            if not isinstance(exc, CallCancelled):
                raise
            await self.lifecycle.finish(
                call_id,
                CallCompletion(
                    status="ended",
                    ended_reason="customer-ended-call",
                    error="the caller hung up before the call was answered",
                ),
            )
            return None
        rtp.start()
        return Leg(call_id=call_id, dialog=dialog, rtp=rtp, trunk=trunk)

    def _rtp(self, negotiated: sdp.Negotiated | None, call_id: str | None) -> RtpSession:
        observe = self._on_rtp_sent
        rtp = RtpSession(
            codec_pt=negotiated.codec_pt if negotiated else sdp.PCMU,
            dtmf_pt=negotiated.dtmf_pt if negotiated else DTMF_PT,
            local_host=self.rtp_host,
            ports=self.ports,
            on_sent=(lambda packet, _late: observe(call_id, packet))
            if observe is not None and call_id is not None
            else None,
            srtp=negotiated.srtp.context() if negotiated and negotiated.srtp else None,
        )
        if negotiated is not None:
            rtp.set_remote(negotiated.remote_host, negotiated.remote_port)
        return rtp

    # --- one conversation -------------------------------------------------------------------
    def _media(self, leg: Leg) -> SipMediaTransport:
        dialog = leg.dialog

        async def hang_up() -> None:
            if not leg.bridged:
                await dialog.bye()

        async def send_info(digit: str) -> None:
            req = dialog.new_request(
                "INFO", [("Content-Type", "application/dtmf-relay")], info_body(digit)
            )
            await self.endpoint.layer.request(req, dialog.peer)

        transport = SipMediaTransport(
            leg.rtp,
            on_hangup=hang_up,
            on_transfer=lambda destination: self._transfer(leg, destination),
            on_dtmf_info=send_info,
        )

        def on_info(req: Request) -> None:
            digit = parse_info_body(req.content_type, req.body)
            if digit:
                transport.dtmf_info_received(digit)

        dialog.on_info = on_info
        leg.transport = transport
        return transport

    async def _converse(self, leg: Leg, *, prepared: PreparedCall | None = None) -> None:
        transport = self._media(leg)
        self.legs[leg.call_id] = leg
        watcher = asyncio.create_task(self._watch_bye(leg, transport))
        try:
            await self.runner.run(leg.call_id, transport, prepared=prepared)
        finally:
            watcher.cancel()
            if not leg.bridged:
                self.legs.pop(leg.call_id, None)
                leg.rtp.close()
                leg.dialog.on_info = None  # its closure refers to the transport, and back
                leg.transport = None

    async def _watch_bye(self, leg: Leg, transport: SipMediaTransport) -> None:
        await leg.dialog.ended.wait()
        if not leg.bridged:
            transport.remote_hangup("customer-ended-call")

    async def _say_and_hang_up(self, leg: Leg, text: str) -> None:
        """Play ``text`` (local Piper voice) to the caller, then BYE."""
        try:
            if self._tts is None:
                self._tts = PiperTTS(self.svc.settings.default_tts_voice)
            async for chunk in self._tts.synthesize(text):
                await leg.rtp.send(resample_all(chunk.pcm, chunk.sample_rate, SAMPLE_RATE))
            deadline = time.monotonic() + 30
            while leg.rtp.queued_samples and not leg.dialog.ended.is_set():
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        finally:
            await leg.dialog.bye()
            leg.rtp.close()

    async def _fail(self, call_id: str, reason: str, error: str) -> None:
        await self.lifecycle.finish(
            call_id, CallCompletion(status="failed", ended_reason=reason, error=error)
        )

    # --- outbound ---------------------------------------------------------------------------
    async def dial(self, call_id: str) -> None:
        """:class:`~flireo.services.dialer.Dialer`: place the stored call in the background."""
        self._spawn(self._outbound(call_id), f"dial-{call_id}")

    async def _outbound(self, call_id: str) -> None:
        try:
            await self._place(call_id)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._fail(call_id, DialEndedReason.INTERRUPTED, "the server stopped")
            )
            raise
        except Exception as exc:  # RTP ports, the store, a bug: the record ends once
            await end_failed_setup(self.lifecycle, call_id, exc, step="dial")

    async def _place(self, call_id: str) -> None:
        async with self.svc.db.read() as s:
            call = await s.get(Call, call_id)
            if call is None or call.status not in ("dialing", "connecting"):
                return
            number = await s.get(PhoneNumber, call.number_id) if call.number_id else None
            destination, caller = call.caller_phone, call.assistant_phone
        trunk = await self._trunk(number.transfer_trunk_id if number else None)
        if trunk is None or not destination:
            await self._fail(call_id, DialEndedReason.FAILED, "the number has no SIP trunk")
            return
        try:
            prepared = await self.runner.prepare(call_id)
        except CallSetupError as exc:
            await self.runner.fail(call_id, exc.ended_reason, exc.error, answered=False)
            return
        await self._claim(call_id)
        target = trunk.uri(destination)
        try:
            dialog, rtp = await self._invite(call_id, target, caller, trunk)
        except DialFailed as exc:
            reason = _DIAL_FAILURES.get(exc.kind, DialEndedReason.FAILED)
            await self._fail(call_id, reason, f"{exc.status or ''} {exc.reason}".strip())
            return
        await self._converse(
            Leg(call_id=call_id, dialog=dialog, rtp=rtp, trunk=trunk), prepared=prepared
        )

    async def _invite(
        self,
        call_id: str | None,
        target: str,
        caller: str | None,
        trunk: Trunk,
        *,
        max_forwards: int = 70,
    ) -> tuple[Dialog, RtpSession]:
        """INVITE ``target`` through ``trunk``; the answered dialog and its started media."""
        uri = parse_any_uri(target)
        assert isinstance(uri, SipUri)
        flow = await resolve(next_hop(uri))
        rtp = self._rtp(None, call_id)
        port = await rtp.bind()
        # SRTP only when the trunk demands it (a plain offer is answered by anyone)
        crypto = srtp.offer_lines() if trunk.srtp == "mandatory" else ()
        offer = sdp.build(
            host=self.endpoint.advertised_host(flow),
            port=port,
            session_id=secrets.randbits(31),
            version=1,
            codecs=CODECS,
            dtmf_pt=DTMF_PT,
            proto="RTP/SAVP" if crypto else "RTP/AVP",
            crypto=crypto,
        )
        host = self.endpoint.advertised_host(flow)
        from_uri = f"sip:{caller or 'flireo'}@{host}"

        def progress(status: int, reason: str) -> None:
            if call_id is not None and status in (180, 183):
                self._spawn(self._ringing(call_id), f"ringing-{call_id}")

        try:
            dialog = await self.endpoint.invite(
                target,
                from_uri=from_uri,
                sdp_offer=offer,
                credentials=trunk.credentials,
                timeout_s=self.svc.settings.sip_ring_timeout_seconds,
                on_progress=progress,
                headers=[("Max-Forwards", str(max_forwards))],
            )
        except BaseException:
            rtp.close()
            raise
        try:
            negotiated = sdp.accept_answer(
                (*CODECS, DTMF_PT), sdp.parse_audio(dialog.remote_sdp), crypto
            )
        except ValueError as exc:
            await dialog.bye()
            rtp.close()
            detail = f"the answer's SDP does not fit our offer: {exc}"
            raise DialFailed(None, detail, "failed") from None
        rtp.use_codec(negotiated.codec_pt, negotiated.dtmf_pt)
        rtp.set_srtp(negotiated.srtp.context() if negotiated.srtp is not None else None)
        rtp.set_remote(negotiated.remote_host, negotiated.remote_port)
        rtp.start()
        return dialog, rtp

    # --- the egress policy at dial time (DNS may have changed since create/update) ----------
    def _own_sip(self) -> tuple[set[int], set[str]]:
        ports, hosts = own_sip(self.svc.settings)
        ports.add(self.endpoint.port)
        if self.endpoint.tls_port is not None:
            ports.add(self.endpoint.tls_port)
        if self.endpoint.public_host:
            hosts.add(self.endpoint.public_host)
        return ports, hosts

    def _check_flow(self, flow: Flow, host: str) -> None:
        """The endpoint's last check before an INVITE leaves, on the resolved address it
        is sent to: refused targets fail the dial (``dial-failed``, the reason recorded)."""
        ports, hosts = self._own_sip()
        try:
            check_sip_address(
                ipaddress.ip_address(flow.host),
                flow.port,
                host,
                allow_loopback=self.svc.settings.allow_private_urls,
                own_ports=ports,
                own_hosts=hosts,
            )
        except UnsafeUrl as exc:
            raise DialFailed(None, f"refused by the egress policy: {exc}", "failed") from None

    async def _refused_target(self, destination: str) -> str | None:
        """Why a ``sip:`` transfer destination may not be used now (None: it may)."""
        if not destination.startswith(("sip:", "sips:")):
            return None
        try:
            host, port = sip_hop(destination)
        except ValueError as exc:
            return str(exc)
        ports, hosts = self._own_sip()
        try:
            await check_sip_host(
                host,
                port,
                allow_loopback=self.svc.settings.allow_private_urls,
                own_ports=ports,
                own_hosts=hosts,
            )
        except UnsafeUrl as exc:
            return f"refused by the egress policy: {exc}"
        return None

    async def _ringing(self, call_id: str) -> None:
        await self.lifecycle.transition(call_id, "ringing")

    async def _claim(self, call_id: str) -> None:
        async with self.svc.db.transaction() as s:
            call = await s.get(Call, call_id, with_for_update=True)
            if call is not None:
                call.owner_node = self.svc.settings.node_id

    async def _trunk(self, trunk_id: str | None) -> Trunk | None:
        if trunk_id is None:
            return None
        async with self.svc.db.read() as s:
            row = await s.get(SipTrunk, trunk_id)
            if row is None:
                return None
            password = (
                await self.svc.vault.reveal(s, row.org_id, row.password_secret_id)
                if row.password_secret_id
                else None
            )
            return Trunk(row.host, row.port, row.transport, row.username, password, row.srtp)

    # --- transfer -------------------------------------------------------------------------
    async def _transfer(self, leg: Leg, destination: str) -> TransferResult:
        """A transfer (control command or ``transferCall`` tool): the organization's
        dial policy first (services/dial_policy.py), then the transfer itself; each
        outcome is reported with a ``transfer-update`` webhook."""
        async with self.svc.db.read() as s:
            refusal = await transfer_refusal(s, leg.call_id, destination, self.svc.settings)
        if refusal is not None:
            result = TransferResult(ok=False, detail=f"{refusal.code}: {refusal.message}")
        else:
            result = await self._transfer_leg(leg, destination)
        try:
            queued = await record_transfer_update(
                self.svc.db,
                leg.call_id,
                destination,
                ok=result.ok,
                detail=result.detail,
                now=self.svc.clock.now(),
            )
        except Exception:  # the transfer happened (or not) either way
            log.exception("could not queue the transfer-update webhook", call_id=leg.call_id)
        else:
            if queued:
                self.svc.kick_webhooks()
        return result

    async def _transfer_leg(self, leg: Leg, destination: str) -> TransferResult:
        """Cold transfer: REFER first; if the peer refuses it, bridge through the trunk."""
        refusal = await self._refused_target(destination)
        if refusal is not None:
            return TransferResult(ok=False, detail=refusal)
        target = destination
        if leg.trunk is None and leg.trunk_id is not None:
            leg.trunk = await self._trunk(leg.trunk_id)
        if not destination.startswith(("sip:", "sips:")):
            if leg.trunk is None:
                return TransferResult(ok=False, detail="no SIP trunk to reach a phone number")
            target = leg.trunk.uri(destination)
        result = await leg.dialog.refer(target)
        if result.ok:
            return TransferResult(ok=True, detail=f"REFER accepted ({result.status})")
        refused = result.status in (403, 405, 420, 488, 501, 603)
        if not refused or leg.trunk is None:
            return TransferResult(ok=False, detail=result.detail)
        log.info("REFER refused, bridging through the trunk", call_id=leg.call_id)
        return await self._bridge(leg, target)

    async def _bridge(self, leg: Leg, target: str) -> TransferResult:
        assert leg.trunk is not None
        if leg.max_forwards <= 1:
            return TransferResult(ok=False, detail="Max-Forwards exhausted (a call loop)")
        try:
            other, other_rtp = await self._invite(
                None, target, None, leg.trunk, max_forwards=leg.max_forwards - 1
            )
        except DialFailed as exc:
            return TransferResult(ok=False, detail=f"transfer call failed: {exc}")
        leg.bridged = True
        if leg.transport is not None:
            leg.transport.detach()  # the media is the bridge's from now on
        self._spawn(self._relay(leg, other, other_rtp), f"bridge-{leg.call_id}")
        return TransferResult(ok=True, detail="bridged through the trunk")

    async def _relay(self, leg: Leg, other: Dialog, other_rtp: RtpSession) -> None:
        """Both calls' audio to each other until either side hangs up, then BYE the other."""

        async def pump(source: RtpSession, sink: RtpSession) -> None:
            async for frame in source.frames():
                await sink.send(frame)

        pumps = [
            asyncio.create_task(pump(leg.rtp, other_rtp)),
            asyncio.create_task(pump(other_rtp, leg.rtp)),
            asyncio.create_task(leg.dialog.ended.wait()),
            asyncio.create_task(other.ended.wait()),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for dialog in (leg.dialog, other):
                with contextlib.suppress(Exception):
                    await dialog.bye()
            leg.rtp.close()
            other_rtp.close()
            self.legs.pop(leg.call_id, None)
