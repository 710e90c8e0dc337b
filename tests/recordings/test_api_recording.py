"""``GET/DELETE /calls/{id}/recording`` and the signed links, on SQLite and PostgreSQL:
Range requests as browsers send them, 416 in the error shape, links that work
without the API key, expired or tampered links (403), other organizations (404)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from flireo.recordings.links import links_for
from flireo.services.container import Services
from tests.api.conftest import (
    MakeOrg,
    Org,
    _drop_pg_schema,
    api,
    backend,
    client,
    keyring,
    make_org,
    org,
    services,
    settings,
)
from tests.recordings.api_helpers import Stored, call_with_recording, new_call

__all__ = [
    "_drop_pg_schema",
    "api",
    "backend",
    "client",
    "keyring",
    "make_org",
    "org",
    "services",
    "settings",
]


@pytest.fixture
async def stored(services: Services, org: Org, tmp_path: Path) -> Stored:
    return await call_with_recording(services, org.id, tmp_path)


def path_of(url: str) -> str:
    """A signed link as the test client's relative URL (the client's base is /api/v1)."""
    parts = urlsplit(url)
    assert parts.path.startswith("/api/v1/")
    return parts.path.removeprefix("/api/v1") + "?" + parts.query


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message", "param", "type"}
    if code is not None:
        assert error["code"] == code
    return dict(error)


async def test_whole_recording_with_the_api_key(api: httpx.AsyncClient, stored: Stored) -> None:
    r = await api.get(f"/calls/{stored.call_id}/recording")
    assert r.status_code == 200
    assert r.content == stored.stereo
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["content-length"] == str(len(stored.stereo))
    assert r.headers["accept-ranges"] == "bytes"
    mono = await api.get(f"/calls/{stored.call_id}/recording", params={"channels": "mono"})
    assert mono.status_code == 200
    assert mono.content == stored.mono


async def test_range_requests(api: httpx.AsyncClient, stored: Stored) -> None:
    url, size, data = f"/calls/{stored.call_id}/recording", len(stored.stereo), stored.stereo
    cases = {
        "bytes=0-1": (0, 2),  # Chrome/Firefox first probe
        "bytes=0-": (0, size),
        "bytes=1000-4999": (1000, 5000),
        "bytes=-500": (size - 500, size),
        f"bytes={size - 10}-{size + 1000}": (size - 10, size),  # end clamped
        f"bytes=-{size * 2}": (0, size),  # suffix longer than the file
    }
    for header, (start, end) in cases.items():
        r = await api.get(url, headers={"Range": header})
        assert r.status_code == 206, (header, r.text)
        assert r.content == data[start:end], header
        assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{size}", header
        assert r.headers["content-length"] == str(end - start), header
        assert r.headers["content-type"] == "audio/wav"


async def test_unsatisfiable_ranges_are_416(api: httpx.AsyncClient, stored: Stored) -> None:
    malformed_or_out_of_bounds = [
        "bytes=abc",
        "bytes=5-2",
        "bytes=-0",
        "bytes=-",
        "items=0-10",
        "bytes=0-1,5-6",
        "bytes=99999999-",
        "bytes=99999999-99999999",
        "bytes 0-10",
        "bytes=0x10-",
    ]
    for header in malformed_or_out_of_bounds:
        r = await api.get(f"/calls/{stored.call_id}/recording", headers={"Range": header})
        error = assert_error(r, 416, "range_not_satisfiable")
        assert error["param"] == "Range"
        assert r.headers["content-range"] == f"bytes */{len(stored.stereo)}", header


async def test_head_answers_the_headers(api: httpx.AsyncClient, stored: Stored) -> None:
    r = await api.head(f"/calls/{stored.call_id}/recording", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206
    assert r.content == b""
    assert r.headers["content-length"] == "100"


async def test_call_object_has_signed_links_that_work_without_the_key(
    api: httpx.AsyncClient, client: httpx.AsyncClient, services: Services, stored: Stored
) -> None:
    call = (await api.get(f"/calls/{stored.call_id}")).json()
    stereo_url, mono_url = call["stereo_recording_url"], call["recording_url"]
    base = services.settings.resolved_public_base_url
    assert stereo_url.startswith(f"{base}/api/v1/calls/")
    assert mono_url.startswith(f"{base}/api/v1/calls/")
    assert call["recording_status"] == "stored"
    assert call["recording_format"] == "wav"
    assert call["recording_duration_seconds"] == 2.0
    listed = (await api.get("/calls")).json()["calls"]
    assert listed[0]["stereo_recording_url"] == stereo_url
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://test/api/v1"
    ) as anonymous:
        r = await anonymous.get(path_of(stereo_url), headers={"Range": "bytes=0-1"})
        assert r.status_code == 206
        assert r.content == stored.stereo[:2]
        r = await anonymous.get(path_of(mono_url))
        assert r.status_code == 200
        assert r.content == stored.mono
        # without a signature the key is needed
        r = await anonymous.get(f"/calls/{stored.call_id}/recording")
        assert_error(r, 401)


async def test_tampered_and_expired_links_are_403(
    api: httpx.AsyncClient, client: httpx.AsyncClient, services: Services, stored: Stored
) -> None:
    call = (await api.get(f"/calls/{stored.call_id}")).json()
    url = path_of(call["stereo_recording_url"])
    query = parse_qs(urlsplit(url).query)
    expires, signature = query["expires"][0], query["signature"][0]
    base = f"/calls/{stored.call_id}/recording"
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://test/api/v1"
    ) as anonymous:
        tampered = [
            {"channels": "stereo", "expires": str(int(expires) + 3600), "signature": signature},
            {"channels": "mono", "expires": expires, "signature": signature},
            {"channels": "stereo", "expires": expires, "signature": signature[:-2] + "AA"},
            {"channels": "stereo", "expires": expires},
            {"channels": "stereo", "expires": "soon", "signature": signature},
        ]
        for params in tampered:
            assert_error(await anonymous.get(base, params=params), 403)
        other = await new_call(services, (await api.get("/account")).json()["id"])
        assert_error(
            await anonymous.get(
                f"/calls/{other}/recording",
                params={"channels": "stereo", "expires": expires, "signature": signature},
            ),
            403,
        )
        links = links_for(services.settings)
        past = services.clock.now() - timedelta(seconds=links.ttl_seconds + 7200)
        expired = links.url(stored.call_id, "stereo", past)
        error = assert_error(await anonymous.get(path_of(expired)), 403, "link_expired")
        assert error["type"] == "permission_error"


async def test_another_organizations_key_gets_404(
    client: httpx.AsyncClient, make_org: MakeOrg, stored: Stored
) -> None:
    other = await make_org("Other Corp")
    r = await client.get(f"/calls/{stored.call_id}/recording", headers=other.headers)
    assert_error(r, 404)
    r = await client.delete(f"/calls/{stored.call_id}/recording", headers=other.headers)
    assert_error(r, 404)


async def test_delete_removes_the_files_and_the_links(
    api: httpx.AsyncClient, stored: Stored, tmp_path: Path
) -> None:
    signed = (await api.get(f"/calls/{stored.call_id}")).json()["stereo_recording_url"]
    files = list((tmp_path / "recordings").rglob("*.wav"))
    assert len(files) == 2
    r = await api.delete(f"/calls/{stored.call_id}/recording")
    assert r.status_code == 204
    assert not list((tmp_path / "recordings").rglob("*.wav"))
    call = (await api.get(f"/calls/{stored.call_id}")).json()
    assert call["recording_url"] is None
    assert call["stereo_recording_url"] is None
    assert call["recording_status"] == "deleted"
    assert_error(await api.get(f"/calls/{stored.call_id}/recording"), 404, "recording_not_found")
    assert_error(await api.get(path_of(signed)), 404, "recording_not_found")
    assert (await api.delete(f"/calls/{stored.call_id}/recording")).status_code == 204


async def test_a_call_without_recording(
    api: httpx.AsyncClient, services: Services, org: Org
) -> None:
    call_id = await new_call(services, org.id, status="failed")
    call = (await api.get(f"/calls/{call_id}")).json()
    assert call["recording_url"] is None
    assert call["stereo_recording_url"] is None
    assert call["recording_status"] is None
    assert_error(await api.get(f"/calls/{call_id}/recording"), 404, "recording_not_found")
    assert_error(await api.get("/calls/call-nope/recording"), 404)
    r = await api.get(f"/calls/{call_id}/recording", params={"channels": "left"})
    assert_error(r, 400)


async def test_ogg_is_served_as_audio_ogg(
    api: httpx.AsyncClient, services: Services, org: Org, tmp_path: Path
) -> None:
    stored = await call_with_recording(services, org.id, tmp_path, fmt="ogg")
    r = await api.get(f"/calls/{stored.call_id}/recording", headers={"Range": "bytes=4-"})
    assert r.status_code == 206
    assert r.headers["content-type"] == "audio/ogg"
    assert r.content == stored.stereo[4:]
