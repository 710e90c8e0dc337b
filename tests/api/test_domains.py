from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from flireo.services.container import Services
from tests.fakes.dns_server import DnsServer
from tests.fakes.resend import FakeResend
from tests.fakes.server import serve

RESEND_KEY = "re_test_0123456789abcdef"


@pytest.fixture
def resend(services: Services) -> Iterator[FakeResend]:
    fake = FakeResend(api_key=RESEND_KEY)
    with serve(fake.app()) as srv:
        services.settings.resend_base_url = srv.url
        yield fake


async def test_domain_needs_a_resend_key(api: httpx.AsyncClient, resend: FakeResend) -> None:
    r = await api.post("/domains", json={"domain": "notify.example.com"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "resend_not_configured"
    assert resend.domains == {}


async def test_domain_lifecycle_with_dns_verification(
    api: httpx.AsyncClient, services: Services, resend: FakeResend
) -> None:
    await api.post("/byok", json={"provider": "resend", "api_key": RESEND_KEY})
    assert (await api.get("/domains")).json() == {"domain": None}
    r = await api.post(
        "/domains", json={"domain_name": "notify.example.com", "region": "eu-west-1"}
    )
    assert r.status_code == 201, r.text
    domain = r.json()["domain"]
    assert domain["status"] == "not_started"
    assert domain["region"] == "eu-west-1"
    assert [rec["type"] for rec in domain["records"]] == ["MX", "TXT", "CNAME"]
    assert resend.keys_seen[-1] == RESEND_KEY
    assert (await api.post("/domains", json={"domain": "other.example.com"})).status_code == 409

    mx, txt, cname = domain["records"]
    zone = {
        ("send.notify.example.com", "MX"): [f"10 {mx['value']}."],
        ("send.notify.example.com", "TXT"): [txt["value"]],
        # the DKIM record is not published yet
    }
    with DnsServer(zone) as dns:
        services.settings.dns_nameservers = [dns.address]
        verified = (await api.post("/domains/verify")).json()["domain"]
        checks = {c["type"]: c for c in verified["dns_checks"]}
        assert checks["MX"]["ok"] is True
        assert checks["TXT"]["ok"] is True
        assert checks["CNAME"]["ok"] is False
        assert checks["CNAME"]["name"] == f"{cname['name']}.notify.example.com"
        dns.set(checks["CNAME"]["name"], "CNAME", [cname["value"]])
        again = (await api.post("/domains/verify")).json()["domain"]
        assert all(c["ok"] for c in again["dns_checks"])
        assert ("send.notify.example.com", "MX") in dns.queries
    assert resend.verify_calls == [domain["resend_domain_id"]] * 2
    assert verified["status"] == "pending"

    resend.domains[domain["resend_domain_id"]]["status"] = "verified"
    refreshed = (await api.post("/domains/refresh")).json()["domain"]
    assert refreshed["status"] == "verified"
    assert (await api.get("/domains")).json()["domain"]["status"] == "verified"

    assert (await api.delete("/domains")).status_code == 204
    assert resend.domains == {}
    assert (await api.get("/domains")).json() == {"domain": None}
    assert (await api.delete("/domains")).status_code == 404


async def test_sync_adopts_an_existing_resend_domain(
    api: httpx.AsyncClient, resend: FakeResend
) -> None:
    await api.post("/byok", json={"provider": "resend", "api_key": RESEND_KEY})
    existing = resend.add("mail.acme.nl", status="verified")
    listed = (await api.get("/domains/sync")).json()["domains"]
    assert [(d["id"], d["name"]) for d in listed] == [(existing, "mail.acme.nl")]
    r = await api.post("/domains/sync", json={"domain_id": existing})
    assert r.status_code == 200, r.text
    assert r.json()["domain"]["domain_name"] == "mail.acme.nl"
    assert r.json()["domain"]["status"] == "verified"
    missing = await api.post("/domains/sync", json={"resend_domain_id": "does-not-exist"})
    assert missing.status_code == 404


async def test_resend_errors_are_clear(api: httpx.AsyncClient, resend: FakeResend) -> None:
    await api.post("/byok", json={"provider": "resend", "api_key": "re_wrong_key_0000000"})
    denied = await api.get("/domains/sync")
    assert denied.status_code == 400
    assert denied.json()["error"]["code"] == "resend_unauthorized"
    await api.post("/byok", json={"provider": "resend", "api_key": RESEND_KEY})
    resend.refused.add("bad.example.com")
    refused = await api.post("/domains", json={"domain": "bad.example.com"})
    assert refused.status_code == 400
    assert "Invalid domain name" in refused.json()["error"]["message"]
    invalid = await api.post("/domains", json={"domain": "not a domain"})
    assert invalid.json()["error"]["param"] == "domain"  # the spelling the client sent
    assert (await api.post("/domains/verify")).status_code == 404
