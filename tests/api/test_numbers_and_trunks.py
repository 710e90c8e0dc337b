from __future__ import annotations

import httpx

from tests.api.conftest import MakeOrg


async def test_register_number_accepts_both_spellings(api: httpx.AsyncClient) -> None:
    agent = (await api.post("/agents", json={"name": "a"})).json()["agent"]
    r = await api.post("/numbers", json={"number": "+31201234567", "agent_id": agent["id"]})
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    assert number["phone_number"] == "+31201234567"
    r = await api.post("/numbers", json={"phone_number": "+31850835037", "name": "Main"})
    assert r.json()["number"]["name"] == "Main"
    assert len((await api.get("/numbers")).json()["numbers"]) == 2


async def test_number_errors(api: httpx.AsyncClient, make_org: MakeOrg) -> None:
    assert (await api.post("/numbers", json={"phone_number": "+31850835037"})).status_code == 201
    dup = await api.post("/numbers", json={"phone_number": "+31850835037"})
    assert dup.status_code == 409
    other = await make_org("Other")
    across = await api.post(
        "/numbers", json={"phone_number": "+31850835037"}, headers=other.headers
    )
    assert across.status_code == 409  # one number routes to one organization
    bad = await api.post("/numbers", json={"phone_number": "0612345678"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "phone_number"
    ghost = await api.post(
        "/numbers", json={"phone_number": "+31850835099", "agent_id": "no-such-agent"}
    )
    assert ghost.status_code == 404
    assert ghost.json()["error"]["param"] == "agent_id"


async def test_number_unassign_and_trunk(api: httpx.AsyncClient) -> None:
    agent = (await api.post("/agents", json={"name": "a"})).json()["agent"]
    trunk = (
        await api.post("/sip-trunks", json={"name": "carrier", "host": "sip.example.com"})
    ).json()["sip_trunk"]
    number = (
        await api.post("/numbers", json={"phone_number": "+31850835037", "agent_id": agent["id"]})
    ).json()["number"]
    r = await api.patch(
        f"/numbers/{number['id']}", json={"agent_id": None, "transfer_trunk_id": trunk["id"]}
    )
    assert r.status_code == 200
    assert r.json()["number"]["agent_id"] is None
    assert r.json()["number"]["transfer_trunk_id"] == trunk["id"]
    assert (await api.delete(f"/sip-trunks/{trunk['id']}")).status_code == 204
    after = (await api.get(f"/numbers/{number['id']}")).json()["number"]
    assert after["transfer_trunk_id"] is None
    assert (await api.delete(f"/numbers/{number['id']}")).status_code == 204
    assert (await api.get(f"/numbers/{number['id']}")).status_code == 404


async def test_sip_trunk_password_is_never_returned(api: httpx.AsyncClient) -> None:
    body = {
        "name": "FreePBX",
        "host": "192.168.1.100",
        "port": 5060,
        "username": "flireo-trunk",
        "password": "pbx-password-123",
        "allowed_ips": ["192.168.1.100", "10.0.0.0/8"],
    }
    r = await api.post("/sip-trunks", json=body)
    assert r.status_code == 201, r.text
    trunk = r.json()["sip_trunk"]
    assert "password" not in trunk
    assert trunk["has_password"] is True
    assert trunk["allowed_ips"] == ["192.168.1.100/32", "10.0.0.0/8"]
    listed = (await api.get("/sip-trunks")).json()
    assert list(listed) == ["trunks"]
    assert "pbx-password-123" not in (await api.get(f"/sip-trunks/{trunk['id']}")).text
    assert (await api.post("/sip-trunks", json=body)).status_code == 409
    bad = await api.post("/sip-trunks", json={"name": "x", "host": "h", "port": 70000})
    assert bad.json()["error"]["param"] == "port"


async def test_byok_keys_are_write_only(api: httpx.AsyncClient) -> None:
    empty = (await api.get("/byok")).json()
    assert empty["byok_keys"]["openai_secret_id"] is None
    assert set(empty["byok_keys"]) >= {
        "deepgram_secret_id",
        "openai_secret_id",
        "elevenlabs_secret_id",
        "xai_secret_id",
        "resend_secret_id",
    }
    r = await api.post(
        "/byok", json={"provider": "openai", "api_key": "sk-test-abcdefghijklmnop1234"}
    )
    assert r.status_code == 200, r.text
    state = r.json()
    ref = state["byok_keys"]["openai_secret_id"]
    assert ref
    assert state["keys"][0]["masked_key"] == "sk-...1234"
    assert "abcdefghijklmnop" not in r.text
    rotated = (
        await api.post(
            "/byok", json={"provider": "openai", "api_key": "sk-test-zzzzzzzzzzzzzzzz9999"}
        )
    ).json()
    assert rotated["byok_keys"]["openai_secret_id"] == ref
    assert rotated["keys"][0]["masked_key"] == "sk-...9999"
    gone = await api.request("DELETE", "/byok", json={"provider": "openai"})
    assert gone.json()["byok_keys"]["openai_secret_id"] is None
    await api.post("/byok", json={"provider": "resend", "api_key": "re_abcdefghijklmnopqrstu"})
    gone = await api.delete("/byok", params={"provider": "resend"})
    assert gone.json()["byok_keys"]["resend_secret_id"] is None
    bad = await api.post("/byok", json={"provider": "acme", "api_key": "12345678"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "provider"
    missing = await api.request("DELETE", "/byok")
    assert missing.json()["error"]["code"] == "missing_field"
