"""Secrets never rest in plaintext; the CLI manages keys and secrets of a live server."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from tests.fakes.resend import FakeResend
from tests.fakes.server import serve
from tests.live.server import LiveServer

SECRETS = {
    "byok_openai": "sk-proj-PLAINTEXT-openai-0001",
    "byok_deepgram": "dg-PLAINTEXT-deepgram-0002",
    "trunk": "PLAINTEXT-trunk-password-0003",
    # a whsec_ secret is base64 (Standard Webhooks): b"PLAINTEXT-webhook-0004-24bytes+"
    "webhook": "whsec_UExBSU5URVhULXdlYmhvb2stMDAwNC0yNGJ5dGVzKw==",
    "resend": "re_PLAINTEXT_resend_000005",
}


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_no_plaintext_secret_in_database_files_or_logs(live_server: LiveServer) -> None:
    api, h = live_server.api, live_server.headers
    with httpx.Client(headers=h, timeout=10) as c:
        for provider, key in (
            ("openai", "byok_openai"),
            ("deepgram", "byok_deepgram"),
            ("resend", "resend"),
        ):
            assert c.post(
                f"{api}/byok", json={"provider": provider, "api_key": SECRETS[key]}
            ).is_success
        trunk = c.post(
            f"{api}/sip-trunks",
            json={"name": "t", "host": "sip.example.com", "password": SECRETS["trunk"]},
        )
        assert trunk.status_code == 201
        agent = c.post(f"{api}/agents", json={"name": "a", "webhook_secret": SECRETS["webhook"]})
        assert agent.status_code == 201
        responses = [c.get(f"{api}/{p}").text for p in ("byok", "sip-trunks", "agents")]
        # a failing request body is not echoed into logs either
        c.post(f"{api}/byok", json={"provider": "nope", "api_key": SECRETS["byok_openai"]})
    live_server.stop()
    blobs = {str(p): p.read_bytes() for p in _files(live_server.data_dir)}
    # and the server's files are owner-only (issue 14 item 10): database, WAL, key
    data = live_server.data_dir / "data"
    modes = {str(p.relative_to(data)): stat.S_IMODE(p.stat().st_mode) for p in data.rglob("*")}
    assert {"flireo.db", "secret.key"} <= set(modes)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    loose = {n: oct(m) for n, m in modes.items() if m & 0o077}
    assert not loose, loose
    assert any(name.endswith("flireo.db") for name in blobs)
    for label, secret in SECRETS.items():
        for name, blob in blobs.items():
            assert secret.encode() not in blob, f"{label} found in {name}"
        for body in responses:
            assert secret not in body, f"{label} returned by the API"
    # and the API key itself is only in the log that showed it once, never in the database
    key = (live_server.api_key or "").encode()
    assert not any(key in blob for name, blob in blobs.items() if "flireo.db" in name)


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_cli_key_management_takes_effect_at_once(live_server: LiveServer) -> None:
    created = live_server.command("keys", "create", "--name", "ci")
    assert created.returncode == 0, created.stderr
    new_key = next(w for w in created.stdout.split() if w.startswith("flk_"))
    headers = {"Authorization": f"Bearer {new_key}"}
    assert httpx.get(live_server.api + "/agents", headers=headers).status_code == 200
    listing = live_server.command("keys", "list")
    assert new_key[:12] in listing.stdout
    assert new_key not in listing.stdout
    revoked = live_server.command("keys", "revoke", new_key[:12])
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    r = httpx.get(live_server.api + "/agents", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "api_key_revoked"
    assert httpx.get(live_server.api + "/agents", headers=live_server.headers).status_code == 200
    topped = live_server.command("credits", "add", "250")
    assert "1250" in topped.stdout
    account = httpx.get(live_server.api + "/account", headers=live_server.headers).json()
    assert account["minutes_balance"] == 1250


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_secret_rotation_under_a_running_server(live_server: LiveServer) -> None:
    fake = FakeResend(api_key=SECRETS["resend"])
    with serve(fake.app()) as resend:
        live_server.stop()
        live_server.env["FLIREO_RESEND_BASE_URL"] = resend.url
        live_server.start()
        api, h = live_server.api, live_server.headers
        assert httpx.post(
            f"{api}/byok", json={"provider": "resend", "api_key": SECRETS["resend"]}, headers=h
        ).is_success
        key_file = live_server.data_dir / "data" / "secret.key"
        before = key_file.read_text()
        rotated = live_server.command("secrets", "rotate")
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "re-encrypted 1 secrets" in rotated.stdout
        assert key_file.read_text() != before
        # the running server meets a key id it does not know, reloads, and decrypts
        r = httpx.get(f"{api}/domains/sync", headers=h)
        assert r.status_code == 200, r.text
        assert fake.keys_seen[-1] == SECRETS["resend"]
        live_server.stop()
        live_server.start()
        assert httpx.get(f"{api}/domains/sync", headers=h).status_code == 200


@pytest.mark.parametrize("live_server", ["postgres"], indirect=True)
def test_db_upgrade_on_postgres(live_server: LiveServer) -> None:
    result = live_server.command("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database at head" in result.stdout
