"""``POST /calls/web``: a browser calls an agent over WebRTC.

1. The offer is checked (SDP that parses, with an audio m-line) and the agent
   read (the organization's, active) and the organization's minutes: 400/402
   before anything is stored.
2. A peer connection answers the offer (Opus only, host candidates: no STUN
   server is asked; the answer carries all candidates, gathering is complete).
3. The call is stored (``direction`` ``web``, type ``webCall``) and moves to
   ``ringing``; its providers are prepared by the same
   :class:`~flireo.services.call_runner.CallRunner` as a phone call's.
4. A task waits for the connection (ICE + DTLS), then runs the call through
   :meth:`CallRunner.run` on a :class:`~flireo.webcall.transport.WebRtcTransport`:
   the same engine, control commands, webhooks, usage and end-of-call report
   as a SIP call. A browser that never connects ends the call as ``failed``
   (``customer-did-not-answer``) after ``connect_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any, ClassVar

import structlog
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.sdp import SessionDescription
from pydantic import AliasChoices, Field
from sqlalchemy import select

from flireo.domain.calls import CallOut, DialEndedReason
from flireo.domain.common import OutModel, WireModel
from flireo.errors import InvalidRequest, PaymentRequired
from flireo.services.call_lifecycle import CallLifecycle
from flireo.services.call_runner import CallRunner, CallSetupError, PreparedCall
from flireo.services.calls import call_out
from flireo.services.container import Services
from flireo.store.tables import Agent, Call, Organization
from flireo.webcall.transport import WebRtcTransport

log = structlog.get_logger(__name__)

#: an SDP offer is a few kB; anything this large is not one
MAX_SDP_CHARS = 64_000


class WebCallRequest(WireModel):
    #: SDP lines end in CRLF: free text (NUL still refused)
    free_text_fields: ClassVar[frozenset[str]] = frozenset(
        getattr(WireModel, "free_text_fields", frozenset())
    ) | {"sdp"}

    agent_id: str = Field(
        min_length=1, max_length=200, validation_alias=AliasChoices("agent_id", "agentId")
    )
    #: the browser's SDP offer (``RTCPeerConnection.localDescription.sdp``, ICE gathered)
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class WebCallResponse(OutModel):
    call: CallOut
    #: the SDP answer for ``setRemoteDescription({type: "answer", sdp})``
    sdp: str


def check_offer(sdp: str) -> None:
    """400 unless ``sdp`` is an SDP offer with an audio stream we can answer."""
    bad = InvalidRequest("sdp is not a valid SDP offer", param="sdp", code="invalid_sdp")
    if not sdp.lstrip().startswith("v=0"):
        raise bad
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        raise bad from exc
    audio = [m for m in parsed.media if m.kind == "audio" and m.port != 0]
    if not audio or all(m.direction in ("inactive", "recvonly") for m in audio):
        raise InvalidRequest(
            "The offer has no audio stream to send (add a microphone track)",
            param="sdp",
            code="offer_without_audio",
        )
    if not any(c.mimeType.lower() == "audio/opus" for m in audio for c in m.rtp.codecs):
        raise InvalidRequest("The offer does not include Opus", param="sdp", code="no_opus")


def web_call_id() -> str:
    return f"call-web-{secrets.token_hex(8)}"


class WebCalls:
    """This process's browser calls."""

    def __init__(
        self,
        services: Services,
        lifecycle: CallLifecycle,
        runner: CallRunner,
        *,
        connect_timeout_s: float | None = None,
        media_timeout_s: float | None = None,
    ) -> None:
        self.svc, self.lifecycle, self.runner = services, lifecycle, runner
        settings = services.settings
        self.connect_timeout_s = connect_timeout_s or settings.webcall_connect_timeout_seconds
        self.media_timeout_s = media_timeout_s or settings.webcall_media_timeout_seconds
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.transports: dict[str, WebRtcTransport] = {}

    async def start(self, org_id: str, body: WebCallRequest) -> WebCallResponse:
        check_offer(body.sdp)
        svc = self.svc
        async with svc.db.read() as s:
            agent = (
                await s.execute(
                    select(Agent).where(Agent.id == body.agent_id, Agent.org_id == org_id)
                )
            ).scalar_one_or_none()
            if agent is None:
                raise InvalidRequest(
                    f"Agent {body.agent_id} not found", param="agent_id", code="agent_not_found"
                )
            if not agent.is_active:
                raise InvalidRequest("Agent is inactive", param="agent_id", code="agent_inactive")
            org = await s.get(Organization, org_id)
            if org is None or org.minutes_balance <= 0:
                raise PaymentRequired("Insufficient credits for a call: add minutes to talk")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transport = WebRtcTransport(pc, svc.clock, media_timeout_s=self.media_timeout_s)
        try:
            answer = await self._answer(pc, transport, body.sdp)
        except InvalidRequest:
            await pc.close()
            raise
        call = Call(
            id=web_call_id(),
            org_id=org_id,
            agent_id=agent.id,
            direction="web",
            status="connecting",
            agent_name=agent.name,
            business_name=agent.business_name,
        )
        try:
            await self.lifecycle.open(call, "ringing", agent=agent)
            prepared = await self.runner.prepare(call.id)
        except CallSetupError as exc:
            await pc.close()
            await self.runner.fail(call.id, exc.ended_reason, exc.error, answered=False)
            raise InvalidRequest(
                f"The agent cannot take calls: {exc.error}", code="call_setup_failed"
            ) from exc
        except BaseException:
            await pc.close()
            raise
        self.transports[call.id] = transport
        transport.call_id = call.id
        task = asyncio.create_task(self._run(call.id, transport, prepared), name="web-call")
        self.tasks[call.id] = task
        async with svc.db.read() as s:
            stored = await s.get(Call, call.id)
            assert stored is not None
            out = call_out(stored)
        return WebCallResponse(call=out, sdp=answer)

    async def _answer(self, pc: RTCPeerConnection, transport: WebRtcTransport, sdp: str) -> str:
        @pc.on("track")
        def _track(track: Any) -> None:
            transport.receive(track)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise InvalidRequest(
                f"sdp is not a valid SDP offer: {exc}", param="sdp", code="invalid_sdp"
            ) from exc
        audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise InvalidRequest(
                "The offer has no audio stream", param="sdp", code="offer_without_audio"
            )
        capabilities = RTCRtpReceiver.getCapabilities("audio")
        codecs = capabilities.codecs if capabilities is not None else []
        opus = [c for c in codecs if c.mimeType.lower() == "audio/opus"]
        audio[0].setCodecPreferences(opus)
        pc.addTrack(transport.track)
        for extra in audio[1:]:  # one voice per call
            extra.direction = "inactive"
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise InvalidRequest(
                f"The offer cannot be answered: {exc}", param="sdp", code="invalid_sdp"
            ) from exc
        return str(pc.localDescription.sdp)

    async def _run(self, call_id: str, transport: WebRtcTransport, prepared: PreparedCall) -> None:
        try:
            if not await self._connected(transport):
                log.info("web call never connected", call_id=call_id)
                await transport.hangup()
                await self.runner.fail(
                    call_id,
                    DialEndedReason.NO_ANSWER,
                    "the browser did not connect (ICE/DTLS)",
                    answered=False,
                )
                return
            await self.runner.run(call_id, transport, prepared=prepared)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("web call failed", call_id=call_id)
        finally:
            self.tasks.pop(call_id, None)
            self.transports.pop(call_id, None)
            with contextlib.suppress(Exception):
                await transport.hangup()

    async def _connected(self, transport: WebRtcTransport) -> bool:
        pc = transport.pc
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState in ("connected", "failed", "closed"):
                connected.set()

        if pc.connectionState not in ("connected", "failed", "closed"):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.connect_timeout_s):
                    await connected.wait()
        return pc.connectionState == "connected" and not transport.ended

    async def stop(self) -> None:
        """Shutdown: every call ends once (the runner finishes cancelled calls)."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=35)
