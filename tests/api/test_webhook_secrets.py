"""``webhook_secret``: a ``whsec_`` secret must be what Standard Webhooks can use
(base64, 24-64 bytes), and ``"generate"`` asks the server for one, shown in full
once (issue 14, friction)."""

from __future__ import annotations

import base64
import json
import time

import httpx
from standardwebhooks import Webhook

from flireo.webhooks.signing import webhook_headers


async def test_a_whsec_secret_that_is_not_base64_is_refused(api: httpx.AsyncClient) -> None:
    for secret in (
        "whsec_PLAINTEXT-webhook-0004",  # not base64: standardwebhooks raises on it
        "whsec_" + base64.b64encode(b"short").decode(),  # 5 bytes
        "whsec_",
    ):
        r = await api.post("/agents", json={"name": "a", "webhook_secret": secret})
        assert r.status_code == 400, (secret, r.text)
        error = r.json()["error"]
        assert (error["code"], error["param"]) == ("invalid_request", "webhook_secret")
        assert "whsec_" in error["message"]
    assert (await api.get("/agents")).json() == {"agents": []}
    agent = (await api.post("/agents", json={"name": "a"})).json()["agent"]
    r = await api.patch(f"/agents/{agent['id']}", json={"webhook_secret": "whsec_not base64!"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "webhook_secret"
    # without the prefix any text is a secret, as before
    r = await api.patch(f"/agents/{agent['id']}", json={"webhook_secret": "my own secret 1"})
    assert r.status_code == 200, r.text


async def test_generate_returns_a_working_secret_once(api: httpx.AsyncClient) -> None:
    r = await api.post("/agents", json={"name": "a", "webhook_secret": "generate"})
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    secret = agent["webhook_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:], validate=True)) == 32
    # a receiver using the standardwebhooks library verifies what we sign with it
    body = json.dumps({"message": {"type": "status-update"}}).encode()
    headers = webhook_headers(
        event="status-update",
        webhook_id="msg_1",
        timestamp=int(time.time()),
        body=body,
        secret=secret,
    )
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    # afterwards it is masked like every secret
    got = (await api.get(f"/agents/{agent['id']}")).json()["agent"]
    assert got["webhook_secret"] == f"whs...{secret[-4:]}"
    assert secret not in (await api.get("/agents")).text
    # asking again rotates it
    r = await api.patch(f"/agents/{agent['id']}", json={"webhook_secret": "generate"})
    assert r.status_code == 200, r.text
    rotated = r.json()["agent"]["webhook_secret"]
    assert rotated.startswith("whsec_")
    assert rotated != secret
    # the masked value sent back keeps the secret (a client echoing GET)
    r = await api.patch(f"/agents/{agent['id']}", json={"webhook_secret": f"whs...{rotated[-4:]}"})
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["webhook_secret"] == f"whs...{rotated[-4:]}"
