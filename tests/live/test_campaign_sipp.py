"""A 500-lead campaign through a real ``flireo serve`` to sipp, with five SIGKILLs.

sipp plays the carrier on loopback (``uas_campaign.xml``): every number answers
and hangs up after 0.3–1.5 s, except numbers ending in 7, which are busy (so
those leads use all their attempts). The server dials at concurrency 20 and is
SIGKILLed five times during the run, restarted each time on the same database
and node id, and the campaign is paused and resumed once. Then, from sipp's
message trace (distinct Call-IDs of the INVITEs per dialed number) and the
database:

* no lead got more INVITEs than its attempts, and every attempt except those
  a kill interrupted while dialing (``dial-interrupted``: the process may have
  died before its INVITE left) got its INVITE; every call the carrier saw is
  one of the campaign's attempts;
* every lead is final, its attempts, outcome and status agree with its call
  records and the campaign's retry rules; the campaign is ``completed`` and its
  counters match the leads;
* no lead was claimed while the campaign was paused, no INVITE went out during
  the pause after a short grace, and dialing went on after the resume.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from flireo.campaigns.outcomes import after_attempt, classify
from flireo.domain.calls import DialEndedReason
from flireo.domain.campaigns import FINAL_LEAD_STATUSES
from flireo.store.db import Database
from flireo.store.tables import Call, CampaignLead
from tests.conftest import skip_or_fail
from tests.db import postgres_url
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import serve
from tests.live.server import LiveServer, PostgresDatabase
from tests.telephony.conftest import sipp  # noqa: F401 - pytest fixture
from tests.telephony.sipp import Sipp, SippRun

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

NODE_ID = "campaign-node-1"
CALLER = "+31850835037"
#: calls a kill can leave without an INVITE: the process died between the claim
#: (the call stored ``dialing``) and the INVITE leaving
MAYBE_NOT_SENT = {DialEndedReason.INTERRUPTED}
_INVITE = re.compile(r"^INVITE sip:([^@;>]+)@", re.MULTILINE)
_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.MULTILINE | re.IGNORECASE)
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2}(?:\.\d+)?)")


def zone_where_it_is_midday(now: datetime) -> str:
    """A fixed-offset zone in which ``now`` is around 13:00, far from 08:00 and 21:00."""
    offset = (13 - now.hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


@dataclass
class Invite:
    number: str
    call_id: str
    #: when sipp logged it (None when the trace has no time stamp)
    at: datetime | None


def received(run: SippRun) -> Iterator[tuple[str, str]]:
    """(time stamp line, message) of every message sipp received, from its trace:
    blocks of a ``----- <date> <time>`` line, ``UDP message received ...``, the message."""
    for block in re.split(r"\n(?=-{10,} )", "\n" + run.messages):
        stamp, _, rest = block.strip("\n").partition("\n")
        what, _, message = rest.partition("\n")
        if "message received" in what:
            yield stamp, message.lstrip("\n")


def invites_received(run: SippRun) -> list[Invite]:
    """Every INVITE sipp received (retransmissions included), in trace order."""
    out = []
    for head, body in received(run):
        number = _INVITE.match(body)
        call_id = _CALL_ID.search(body)
        if number is None or call_id is None:
            continue
        stamp = _STAMP.search(head)
        at = (
            datetime.fromisoformat(f"{stamp.group(1)}T{stamp.group(2)}").astimezone(UTC)
            if stamp
            else None
        )
        out.append(Invite(number.group(1), call_id.group(1), at))
    return out


def first_seen(invites: list[Invite]) -> list[tuple[str, datetime]]:
    """(number, time) of each call's first INVITE, in time order."""
    first: dict[str, tuple[str, datetime]] = {}
    for invite in invites:
        if invite.at is not None and invite.call_id not in first:
            first[invite.call_id] = (invite.number, invite.at)
    return sorted(first.values(), key=lambda item: item[1])


@dataclass
class CampaignRun:
    """What happened during one run, for the assertions and the bench."""

    campaign_id: str
    leads: list[str]
    kills: list[float] = field(default_factory=list)
    paused_at: datetime | None = None
    resumed_at: datetime | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    campaign: dict[str, Any] = field(default_factory=dict)


class CampaignHarness:
    """A live server, its API and a sipp carrier, and a campaign to run through them."""

    def __init__(self, server: LiveServer, carrier: SippRun, llm: FakeOpenAI, llm_url: str) -> None:
        self.server, self.carrier = server, carrier
        self.llm, self.llm_url = llm, llm_url
        self.client = httpx.AsyncClient(base_url=server.api, timeout=30)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = await self.client.request(method, path, headers=self.server.headers, **kwargs)
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
        body: dict[str, Any] = r.json()
        return body

    async def create_campaign(
        self,
        leads: int,
        *,
        concurrency: int,
        rate: float,
        max_attempts: int = 3,
        retry_delay_seconds: int = 1,
        prefix: str = "+3161",
    ) -> CampaignRun:
        await self.call("POST", "/byok", json={"provider": "openai", "api_key": self.llm.api_key})
        agent = await self.call(
            "POST",
            "/agents",
            json={
                # no greeting: the callee stays silent, so a call costs no TTS,
                # no STT (the VAD hears nothing) and no LLM turn
                "name": "Campaign caller",
                "stt_config": {"provider": "whisper", "language": "en"},
                "llm_config": {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "base_url": self.llm_url,
                    "messages": [{"role": "system", "content": "You call {{name}}."}],
                },
                "tts_config": {"provider": "piper"},
            },
        )
        trunk = await self.call(
            "POST",
            "/sip-trunks",
            json={"name": "sipp carrier", "host": "127.0.0.1", "port": self.carrier.port},
        )
        number = await self.call(
            "POST",
            "/numbers",
            json={
                "phone_number": CALLER,
                "agent_id": agent["agent"]["id"],
                "transfer_trunk_id": trunk["sip_trunk"]["id"],
            },
        )
        zone = zone_where_it_is_midday(datetime.now(UTC))
        campaign = await self.call(
            "POST",
            "/campaigns",
            json={
                "name": "Load",
                "agent_id": agent["agent"]["id"],
                "number_id": number["number"]["id"],
                "schedule_start_time": "00:00:00",
                "schedule_end_time": "23:59:59",
                "timezone": zone,
                "max_concurrent_calls": concurrency,
                "calls_per_second": rate,
                "max_attempts": max_attempts,
                "retry_delay_seconds": retry_delay_seconds,
            },
        )
        cid = campaign["campaign"]["id"]
        numbers = [f"{prefix}{i:06d}" for i in range(leads)]
        for start in range(0, leads, 1000):
            chunk = numbers[start : start + 1000]
            await self.call(
                "POST",
                f"/campaigns/{cid}/leads",
                json={
                    "leads": [
                        {
                            "phone_number": n,
                            "variables": {"name": f"Lead {n[-4:]}"},
                            "timezone": zone,
                        }
                        for n in chunk
                    ]
                },
            )
        return CampaignRun(campaign_id=cid, leads=numbers)

    async def campaign(self, cid: str) -> dict[str, Any] | None:
        """The campaign, or None while the server is down."""
        try:
            r = await self.client.get(f"/campaigns/{cid}", headers=self.server.headers)
        except httpx.TransportError:
            return None
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()["campaign"]
        return body

    async def set_status(self, cid: str, status: str) -> dict[str, Any]:
        body = await self.call("PATCH", f"/campaigns/{cid}", json={"status": status})
        campaign: dict[str, Any] = body["campaign"]
        return campaign

    async def run(
        self,
        run: CampaignRun,
        *,
        kill_at: list[int],
        pause_at: int | None = None,
        pause_seconds: float = 4.0,
        limit_s: float = 240.0,
    ) -> CampaignRun:
        """Schedule the campaign; SIGKILL and restart the server when the final
        leads reach each of ``kill_at``; pause and resume once at ``pause_at``;
        return when the campaign is ``completed``."""
        kills = sorted(kill_at)
        run.started_at = time.monotonic()
        await self.set_status(run.campaign_id, "scheduled")
        deadline = run.started_at + limit_s
        while True:
            now = time.monotonic()
            assert now < deadline, f"campaign not completed after {limit_s}s: {run.campaign}"
            campaign = await self.campaign(run.campaign_id)
            if campaign is None:
                await asyncio.sleep(0.2)
                continue
            run.campaign = campaign
            if campaign["status"] == "completed":
                break
            done = int(campaign["completed_leads"])
            if kills and done >= kills[0]:
                kills.pop(0)
                self.server.kill()
                run.kills.append(now - run.started_at)
                await asyncio.to_thread(self.server.start)
                continue
            if pause_at is not None and run.paused_at is None and done >= pause_at:
                await self.set_status(run.campaign_id, "paused")
                run.paused_at = datetime.now(UTC)
                await asyncio.sleep(pause_seconds)
                run.resumed_at = datetime.now(UTC)
                await self.set_status(run.campaign_id, "scheduled")
                continue
            await asyncio.sleep(0.2)
        run.finished_at = time.monotonic()
        assert not kills, f"the campaign completed before kills at {kills} final leads"
        return run


def database_url(server: LiveServer) -> str:
    return server.env.get("FLIREO_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{Path(server.env['FLIREO_DATA_DIR']) / 'flireo.db'}"
    )


async def stored(server: LiveServer, cid: str) -> tuple[list[CampaignLead], list[Call]]:
    db = Database(database_url(server))
    try:
        async with db.read() as s:
            leads = list(
                (await s.execute(select(CampaignLead).where(CampaignLead.campaign_id == cid)))
                .scalars()
                .all()
            )
            calls = list(
                (
                    await s.execute(
                        select(Call).where(Call.campaign_id == cid).order_by(Call.created_at)
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await db.dispose()
    return leads, calls


def aware(at: datetime) -> datetime:
    """Stored times are UTC; SQLite gives them back naive."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def lead_totals(harness: CampaignHarness, cid: str) -> dict[str, int]:
    """Leads per final status, as the API counts them."""
    totals = {}
    for status in FINAL_LEAD_STATUSES:
        body = await harness.call(
            "GET", f"/campaigns/{cid}/leads", params={"status": status, "limit": 1}
        )
        totals[status] = int(body["pagination"]["total"])
    return totals


async def stop_carrier(carrier: SippRun) -> None:
    """Let sipp write out its trace (SIGTERM), then make sure it is gone."""
    if carrier.process.returncode is None:
        carrier.process.terminate()
        try:
            await asyncio.wait_for(carrier.process.wait(), 15)
        except TimeoutError:
            carrier.kill()
            await carrier.process.wait()


def server_env() -> dict[str, str]:
    return {
        "FLIREO_NODE_ID": NODE_ID,
        "FLIREO_INITIAL_MINUTES_BALANCE": "100000",
        "FLIREO_SIP_RING_TIMEOUT_SECONDS": "15",
        "FLIREO_LOG_LEVEL": "warning",
        # below the kernel's ephemeral ports and away from the other live tests' range
        "FLIREO_RTP_PORT_MIN": "21000",
        "FLIREO_RTP_PORT_MAX": "29999",
    }


async def start_carrier(launcher: Sipp) -> SippRun:
    return await launcher.start(
        "uas_campaign.xml",
        calls=1_000_000,
        extra=[
            "-timeout",
            "900s",  # the launcher's 25 s suits one call, not a campaign
            "-recv_timeout",
            "20000",  # a call whose dialer was killed waits no longer for its ACK
            "-default_behaviors",
            "none",  # an aborted call just ends (no BYE into a restarted server)
        ],
    )


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    url = postgres_url()
    if not url:
        skip_or_fail("FLIREO_TEST_POSTGRES_URL is not set")
        return
    pg = PostgresDatabase(url)
    pg.create()
    try:
        yield {"FLIREO_DATABASE_URL": pg.url}
    finally:
        pg.drop()


@pytest.fixture
async def harness(
    tmp_path: Path,
    database_env: dict[str, str],
    sipp: Sipp,  # noqa: F811 - the fixture imported above
) -> AsyncIterator[CampaignHarness]:
    carrier = await start_carrier(sipp)
    server = LiveServer(tmp_path / "server", env={**server_env(), **database_env})
    fake = FakeOpenAI(api_key="sk-fake-openai")
    with serve(fake.app()) as llm:
        await asyncio.to_thread(server.start)
        h = CampaignHarness(server, carrier, fake, f"{llm.url}/v1")
        try:
            yield h
        finally:
            await h.aclose()
            await asyncio.to_thread(server.stop)
            await stop_carrier(carrier)


LEADS = 500
CONCURRENCY = 20
RATE = 20.0
MAX_ATTEMPTS = 3
RETRY_DELAY = 1


async def test_500_leads_five_sigkills_one_invite_per_attempt(harness: CampaignHarness) -> None:
    run = await harness.create_campaign(
        LEADS,
        concurrency=CONCURRENCY,
        rate=RATE,
        max_attempts=MAX_ATTEMPTS,
        retry_delay_seconds=RETRY_DELAY,
    )
    try:
        await harness.run(run, kill_at=[40, 120, 200, 330, 410], pause_at=260)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- server log ---\n{harness.server.logs()[-6000:]}"
        ) from None
    by_api = await lead_totals(harness, run.campaign_id)
    await asyncio.to_thread(harness.server.stop)
    await stop_carrier(harness.carrier)  # sipp writes out its trace
    leads, calls = await stored(harness.server, run.campaign_id)
    invites = invites_received(harness.carrier)
    assert len(run.kills) == 5
    assert invites, harness.carrier.explain()

    # --- the carrier's view: one INVITE per attempt, never more ---------------------------
    seen: dict[str, set[str]] = defaultdict(set)
    for invite in invites:
        seen[invite.number].add(invite.call_id)
    assert set(seen) <= set(run.leads), set(seen) - set(run.leads)
    calls_of: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        assert call.lead_id is not None
        calls_of[call.lead_id].append(call)
    assert len(leads) == LEADS
    unsent = 0
    for lead in leads:
        mine = calls_of[lead.id]
        sent = len(seen.get(lead.phone_number, ()))
        maybe_unsent = sum(1 for c in mine if c.ended_reason in MAYBE_NOT_SENT)
        assert lead.attempts == len(mine), (lead.phone_number, lead.attempts, len(mine))
        assert sent <= lead.attempts, f"{lead.phone_number}: {sent} INVITEs, {lead.attempts} tries"
        assert sent >= lead.attempts - maybe_unsent, (
            f"{lead.phone_number}: {sent} INVITEs for {lead.attempts} attempts "
            f"({[(c.ended_reason, c.error) for c in mine]})"
        )
        unsent += lead.attempts - sent
    # the kills were real: they cut off calls in progress (and often some being set up)
    interrupted = [c for c in calls if c.ended_reason in (*MAYBE_NOT_SENT, "call-interrupted")]
    assert "call-interrupted" in {c.ended_reason for c in interrupted}
    assert unsent <= sum(1 for c in interrupted if c.ended_reason in MAYBE_NOT_SENT)

    # --- every lead final, by the campaign's rules ----------------------------------------
    for lead in leads:
        mine = calls_of[lead.id]
        assert lead.status in FINAL_LEAD_STATUSES, (lead.phone_number, lead.status)
        assert all(c.status in ("ended", "failed") for c in mine), lead.phone_number
        assert lead.call_id == mine[-1].id
        last = mine[-1]
        outcome = classify(last.ended_reason, answered=last.started_at is not None)
        assert lead.outcome == outcome, (lead.phone_number, lead.outcome, last.ended_reason)
        decision = after_attempt(
            outcome,
            attempts=lead.attempts,
            max_attempts=MAX_ATTEMPTS,
            retry_delay_seconds=RETRY_DELAY,
            ended_at=last.ended_at or datetime.now(UTC),
        )
        assert decision.status == lead.status, (lead.phone_number, lead.status, outcome)
        for earlier in mine[:-1]:  # only retryable outcomes were retried
            assert classify(earlier.ended_reason, answered=earlier.started_at is not None) != (
                "completed"
            ), (lead.phone_number, earlier.ended_reason)
        reasons = {c.ended_reason for c in mine}
        if lead.phone_number.endswith("7"):  # the carrier is busy: every attempt is used
            assert reasons <= {DialEndedReason.BUSY, *MAYBE_NOT_SENT}, lead.phone_number
            assert lead.attempts == MAX_ATTEMPTS, lead.phone_number
        else:
            assert DialEndedReason.BUSY not in reasons, lead.phone_number
    statuses = Counter(lead.status for lead in leads)
    busy_numbers = sum(1 for n in run.leads if n.endswith("7"))
    assert busy_numbers - len(interrupted) <= statuses["busy"] <= busy_numbers
    assert statuses["completed"] >= LEADS - busy_numbers - len(interrupted)

    print(
        f"{len(invites)} INVITEs ({len({i.call_id for i in invites})} calls), "
        f"{len(calls)} attempts, {len(interrupted)} interrupted "
        f"({Counter(c.ended_reason for c in interrupted)}), {unsent} never sent; "
        f"kills at {[round(k, 1) for k in run.kills]} s; leads {dict(statuses)}; "
        f"{run.finished_at - run.started_at:.1f} s"
    )

    # --- the campaign and its counters ----------------------------------------------------
    final = run.campaign
    assert final["status"] == "completed"
    assert (final["total_leads"], final["completed_leads"]) == (LEADS, LEADS)
    assert by_api == {s: statuses.get(s, 0) for s in FINAL_LEAD_STATUSES}
    # the callees never spoke: no call started an LLM turn
    assert harness.llm.requests == []

    # --- pause and resume -----------------------------------------------------------------
    assert run.paused_at is not None
    assert run.resumed_at is not None
    claimed_in_pause = [c.id for c in calls if run.paused_at < aware(c.created_at) < run.resumed_at]
    assert claimed_in_pause == []
    dialed = first_seen(invites)  # a retransmission is not a new dial
    grace = timedelta(seconds=2)  # for calls claimed just before the pause to send their INVITE
    assert [n for n, at in dialed if run.paused_at + grace < at < run.resumed_at] == []
    assert any(at > run.resumed_at for _, at in dialed)
