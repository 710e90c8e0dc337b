"""Whether and how an inbound call is taken, before it is answered.

Telephony asks :func:`admit_inbound` with the dialed number, the caller and the
source address; the answer is a SIP decision plus, when the call is taken, the
stored call record (``ringing``, with the assistant-request overrides on it):

==============================================  =========================================
unknown number                                   404, no record
number without an active agent                   480, no record
trunk pins source IPs and this one is not in     403, no record
zero minutes balance                             answer, speak the error, record
                                                 ``rejected`` / ``insufficient-credits``
assistant-request replies ``{"error": ...}``     answer, speak it, record ``rejected`` /
                                                 ``assistant-request-returned-error``
a set-up step fails (store, a bug)               500, record ``failed`` with its reason
                                                 (services/setup_failures.py), ended once
otherwise                                        answer; the record is ``ringing``
==============================================  =========================================
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

import structlog
from sqlalchemy import Select, Table, bindparam, select, update

from flireo.services.assistant_request import ask_assistant
from flireo.services.call_lifecycle import CallCompletion, CallLifecycle
from flireo.services.calls import inbound_call_id
from flireo.services.container import Services
from flireo.services.credentials import Credentials, credentials_for
from flireo.services.session_config import agent_configs
from flireo.services.setup_failures import end_failed_setup
from flireo.store.tables import Agent, Call, Organization, PhoneNumber, SipTrunk
from flireo.telephony.sip.guard import ip_allowed
from flireo.webhooks import outbox

log = structlog.get_logger(__name__)

NO_CREDIT_MESSAGE = (
    "We are sorry, this number cannot take calls at the moment. Please try again later."
)
NO_CREDIT_REASON = "insufficient-credits"
ASSISTANT_REJECTED_REASON = "assistant-request-returned-error"

_NOT_DIGITS = re.compile(r"[^0-9]")
_CALLS: Final[Table] = Call.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class CallRows:
    """The stored call and what it was admitted with, as just read and written
    (the runner prepares the session from them instead of reading them again)."""

    call: Call
    agent: Agent
    number: PhoneNumber
    #: the vendor keys and webhook secret for the agent's own pipeline, read with the
    #: number (None: not read; the runner reads them)
    credentials: Credentials | None = None


@dataclass(frozen=True)
class Admission:
    #: 0 = answer the call; otherwise the SIP status to refuse it with
    status: int
    reason: str = ""
    call_id: str | None = None
    #: answer, say this, hang up (the record is already final: ``rejected``)
    reject_message: str | None = None
    #: the trunk the call came through (its IPs are exempt from flood bans)
    trunk_id: str | None = None
    rows: CallRows | None = None

    @property
    def answer(self) -> bool:
        return self.status == 0


def number_candidates(dialed: str) -> list[str]:
    """Spellings of a dialed user part to look up: ``+31850835037``, ``31850835037``..."""
    digits = _NOT_DIGITS.sub("", dialed)
    if not digits:
        return [dialed]
    found = [f"+{digits}", digits]
    if digits.startswith("00"):
        found.append(f"+{digits[2:]}")
    return list(dict.fromkeys([dialed, *found]))


#: the number with its trunk, agent and organization, in one statement (built once;
#: ``candidates``: :func:`number_candidates` of the dialed user part)
_NUMBER_QUERY: Final[Select[PhoneNumber, SipTrunk, Agent, Organization]] = (
    select(PhoneNumber, SipTrunk, Agent, Organization)
    .outerjoin(SipTrunk, SipTrunk.id == PhoneNumber.transfer_trunk_id)
    .outerjoin(Agent, Agent.id == PhoneNumber.agent_id)
    .outerjoin(Organization, Organization.id == PhoneNumber.org_id)
    .where(PhoneNumber.phone_number.in_(bindparam("candidates", expanding=True)))
    .limit(1)
)


async def trunk_ips(services: Services) -> set[str]:
    """Every address pinned on any trunk (exempt from the flood ban)."""
    async with services.db.read() as s:
        rows = (await s.execute(select(SipTrunk.allowed_ips, SipTrunk.host))).all()
    found: set[str] = set()
    for allowed, host in rows:
        found.update(str(a) for a in allowed or [])
        try:
            ipaddress.ip_address(host)
        except ValueError:
            continue
        found.add(host)
    return found


async def admit_inbound(
    services: Services,
    lifecycle: CallLifecycle,
    *,
    dialed: str,
    caller: str | None,
    source_ip: str,
) -> Admission:
    credentials: Credentials | None = None
    async with services.db.read() as s:  # number, trunk, agent, organization; the keys
        found = (await s.execute(_NUMBER_QUERY, {"candidates": number_candidates(dialed)})).first()
        if found is None:
            return Admission(404, "Not Found")
        number, trunk, agent, org = found
        if trunk is not None and not ip_allowed(source_ip, list(trunk.allowed_ips or [])):
            log.warning("inbound call from an address the trunk does not allow", source=source_ip)
            return Admission(403, "Forbidden")
        if agent is None or not agent.is_active or org is None:
            return Admission(480, "Temporarily Unavailable")
        if org.minutes_balance > 0:  # the call will run: its keys, in this same session
            credentials = await credentials_for(
                s,
                services.vault,
                services.settings,
                number.org_id,
                agent_configs(agent),
                agent.webhook_secret_id,
            )
    call = Call(
        id=inbound_call_id(caller),
        org_id=number.org_id,
        agent_id=agent.id,
        number_id=number.id,
        direction="inbound",
        status="connecting",
        caller_phone=caller,
        assistant_phone=number.phone_number,
        agent_name=agent.name,
        business_name=agent.business_name,
        owner_node=services.settings.node_id,
    )
    await lifecycle.open(call, "ringing", agent=agent, number=number.name)
    trunk_id = trunk.id if trunk else None
    try:
        rows = CallRows(call, agent, number, credentials)
        return await _decide(services, lifecycle, rows, org, trunk_id)
    except Exception as exc:  # the record exists: it must not stay ``ringing``
        failure = await end_failed_setup(lifecycle, call.id, exc, step="admission")
        return Admission(failure.sip_status, failure.sip_reason, call_id=call.id, trunk_id=trunk_id)


async def _decide(
    services: Services,
    lifecycle: CallLifecycle,
    rows: CallRows,
    org: Organization,
    trunk_id: str | None,
) -> Admission:
    """The stored ``ringing`` call: reject it (no minutes, assistant-request error),
    or answer it with the assistant-request's overrides stored on it."""
    call, agent, number = rows.call, rows.agent, rows.number
    call_id = call.id
    if org.minutes_balance <= 0:
        await lifecycle.finish(
            call_id,
            CallCompletion(
                status="rejected",
                ended_reason=NO_CREDIT_REASON,
                error="the organization has no minutes left",
            ),
        )
        return Admission(0, call_id=call_id, reject_message=NO_CREDIT_MESSAGE, trunk_id=trunk_id)
    if not outbox.wants(agent, "assistant-request"):
        return Admission(0, call_id=call_id, trunk_id=trunk_id, rows=rows)
    if rows.credentials is not None:
        secret = rows.credentials.webhook_secret
    else:
        async with services.db.read() as s:
            secret = (
                await services.vault.reveal(s, call.org_id, agent.webhook_secret_id)
                if agent.webhook_secret_id
                else None
            )
    decision = await ask_assistant(
        services.http,
        call,
        agent,
        number_name=number.name,
        secret=secret,
        now=services.clock.now(),
        allow_private=services.settings.allow_private_webhooks,
    )
    if decision.reject_message is not None:
        await lifecycle.finish(
            call_id,
            CallCompletion(
                status="rejected",
                ended_reason=ASSISTANT_REJECTED_REASON,
                error=decision.reject_message,
            ),
        )
        return Admission(
            0, call_id=call_id, reject_message=decision.reject_message, trunk_id=trunk_id
        )
    if decision.overrides:
        # the record was written by this admission moments ago: its overrides are ours
        merged = {**(call.overrides or {}), **decision.overrides}
        async with services.db.transaction() as s:
            await s.execute(update(_CALLS).where(_CALLS.c.id == call_id).values(overrides=merged))
        call.overrides = merged
    return Admission(0, call_id=call_id, trunk_id=trunk_id, rows=rows)
