"""Cold transfer by REFER (RFC 3515): sipp accepts with 202 and reports the
outcome in NOTIFY message/sipfrag bodies."""

from __future__ import annotations

import asyncio

import pytest

from flireo.telephony.sip.ua import SipEndpoint
from tests.telephony.sipp import Sipp
from tests.telephony.test_sip_outbound_sipp import OFFER, target

pytestmark = pytest.mark.sipp


@pytest.mark.parametrize(
    ("final", "ok", "status"),
    [("200 OK", True, 200), ("603 Declined", False, 603)],
)
async def test_refer_follows_notify_sipfrag_to_the_final_status(
    endpoint: SipEndpoint, sipp: Sipp, final: str, ok: bool, status: int
) -> None:
    run = await sipp.start("uas_refer.xml", extra=["-key", "final", final])
    dialog = await endpoint.invite(
        target(run), from_uri="sip:+15550100@flireo.test", sdp_offer=OFFER, timeout_s=10
    )
    result = await dialog.refer("sip:+15559990000@example.com", timeout_s=10)
    assert (result.ok, result.status) == (ok, status)
    assert result.detail == f"SIP/2.0 {final}"
    assert not dialog.ended.is_set()  # the transferor hangs up itself

    await asyncio.wait_for(dialog.bye(), 5)
    assert await run.wait() == 0, run.explain()
    refer = run.received("REFER ")[0]
    assert "Referred-By: <sip:+15550100@flireo.test>" in refer
    assert "Contact: <sip:flireo@127.0.0.1:" in refer
