from __future__ import annotations

import httpx

from tests.api.conftest import MakeOrg


async def test_do_not_call_list_add_list_and_remove(api: httpx.AsyncClient) -> None:
    r = await api.post("/do-not-call", json={"phone_number": "+31612345678", "reason": "by mail"})
    assert r.status_code == 201, r.text
    entry = r.json()["entry"]
    assert entry["phone_number"] == "+31612345678"
    assert entry["reason"] == "by mail"
    assert entry["source"] == "api"
    assert entry["created_at"].endswith("Z")
    for n in range(3):
        assert (
            await api.post("/do-not-call", json={"number": f"+3161000000{n}"})
        ).status_code == 201
    page = (await api.get("/do-not-call", params={"limit": 2, "offset": 1})).json()
    assert page["pagination"] == {"total": 4, "limit": 2, "offset": 1}
    assert len(page["entries"]) == 2

    assert (await api.delete("/do-not-call/%2B31612345678")).status_code == 204
    again = await api.delete("/do-not-call/%2B31612345678")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"
    numbers = {e["phone_number"] for e in (await api.get("/do-not-call")).json()["entries"]}
    assert numbers == {"+31610000000", "+31610000001", "+31610000002"}


async def test_do_not_call_errors(api: httpx.AsyncClient) -> None:
    assert (
        await api.post("/do-not-call", json={"phone_number": "+31612345678"})
    ).status_code == 201
    dup = await api.post("/do-not-call", json={"phone_number": "+31612345678"})
    assert dup.status_code == 409
    assert dup.json()["error"]["param"] == "phone_number"
    bad = await api.post("/do-not-call", json={"phone_number": "0612345678"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "phone_number"
    extra = await api.post("/do-not-call", json={"phone_number": "+31612345679", "x": 1})
    assert extra.status_code == 400
    assert (await api.delete("/do-not-call/0612345678")).status_code == 400


async def test_do_not_call_lists_are_per_organization(
    api: httpx.AsyncClient, make_org: MakeOrg
) -> None:
    assert (
        await api.post("/do-not-call", json={"phone_number": "+31612345678"})
    ).status_code == 201
    other = await make_org("Other")
    theirs = await api.get("/do-not-call", headers=other.headers)
    assert theirs.json()["entries"] == []
    gone = await api.delete("/do-not-call/%2B31612345678", headers=other.headers)
    assert gone.status_code == 404
    own = await api.post(
        "/do-not-call", json={"phone_number": "+31612345678"}, headers=other.headers
    )
    assert own.status_code == 201
