"""SIP trunks over TLS with an SRTP policy (issue 14 item 9): the fields, their
defaults, their validation, and our own TLS port refused as a trunk target."""

from __future__ import annotations

from pathlib import Path

import httpx

from flireo.services.container import Services
from flireo.services.sip_gateway import _tls_options
from tests.telephony.tls_certs import self_signed


async def test_tls_trunk_defaults_to_5061_and_keeps_its_srtp_policy(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/sip-trunks",
        json={"name": "tls", "host": "203.0.113.7", "transport": "tls", "srtp": "mandatory"},
    )
    assert r.status_code == 201, r.text
    trunk = r.json()["sip_trunk"]
    assert (trunk["transport"], trunk["port"], trunk["srtp"]) == ("tls", 5061, "mandatory")
    r = await api.get(f"/sip-trunks/{trunk['id']}")
    assert r.json()["sip_trunk"]["srtp"] == "mandatory"
    r = await api.post(
        "/sip-trunks",
        json={"name": "tls-port", "host": "203.0.113.7", "transport": "tls", "port": 5071},
    )
    assert (r.json()["sip_trunk"]["port"], r.json()["sip_trunk"]["srtp"]) == (5071, "optional")
    r = await api.post("/sip-trunks", json={"name": "udp", "host": "203.0.113.7"})
    assert (r.json()["sip_trunk"]["port"], r.json()["sip_trunk"]["transport"]) == (5060, "udp")


async def test_bad_transport_or_srtp_is_a_400_naming_the_field(api: httpx.AsyncClient) -> None:
    for field, value in (("srtp", "always"), ("transport", "dtls"), ("srtp", True)):
        r = await api.post(
            "/sip-trunks", json={"name": f"bad-{field}", "host": "203.0.113.7", field: value}
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == field, r.text


async def test_our_own_tls_port_is_no_trunk(
    api: httpx.AsyncClient, services: Services, tmp_path: Path
) -> None:
    certs = self_signed(tmp_path / "certs")
    settings = services.settings
    settings.sip_host, settings.sip_tls_port = "127.0.0.1", 5071
    settings.sip_tls_cert_file, settings.sip_tls_key_file = certs.cert, certs.key
    options = _tls_options(settings)  # what the gateway's endpoint gets
    assert options["tls_server"] is not None
    assert options["tls_port"] == 5071
    r = await api.post(
        "/sip-trunks",
        json={"name": "loop", "host": "127.0.0.1", "port": 5071, "transport": "tls"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "target_not_allowed"
