"""Create/update-time refusals of user-set targets (issue 14, items 2 and 3):
a 400 ``target_not_allowed`` whose ``param`` names the field and whose message
names the setting."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from flireo.services.container import Services


@pytest.fixture
def strict(services: Services) -> Services:
    """Production defaults: private and loopback targets not allowed."""
    services.settings.allow_private_urls = False
    return services


def _refused(r: httpx.Response, param: str) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "target_not_allowed", error
    assert error["param"] == param, error
    return dict(error)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"webhook_url": "http://10.0.0.8/hook"}, "webhook_url"),
        ({"webhook_url": "http://localhost:8080/hook"}, "webhook_url"),
        (
            {
                "llm_config": {
                    "provider": "openai-compatible",
                    "base_url": "http://127.0.0.1:11434/v1",
                }
            },
            "llm_config.base_url",
        ),
        (
            {
                "llm_config": {
                    "provider": "openai",
                    "tools": [{"name": "crm", "description": "d", "url": "http://192.168.0.9/t"}],
                }
            },
            "llm_config.tools.0.url",
        ),
    ],
)
async def test_private_http_targets_are_refused_at_create(
    api: httpx.AsyncClient, strict: Services, body: dict[str, Any], param: str
) -> None:
    error = _refused(await api.post("/agents", json={"name": "a", **body}), param)
    assert "FLIREO_ALLOW_PRIVATE_URLS" in error["message"]


async def test_a_name_resolving_to_loopback_is_refused_without_echoing_its_address(
    api: httpx.AsyncClient, strict: Services
) -> None:
    error = _refused(
        await api.post("/agents", json={"name": "a", "webhook_url": "http://localhost/h"}),
        "webhook_url",
    )
    assert "127.0.0.1" not in error["message"]
    assert "::1" not in error["message"]


async def test_metadata_targets_are_refused_even_when_private_ones_are_allowed(
    api: httpx.AsyncClient,
) -> None:
    r = await api.post(
        "/agents",
        json={
            "name": "a",
            "llm_config": {"provider": "ollama", "base_url": "http://169.254.169.254/v1"},
        },
    )
    _refused(r, "llm_config.base_url")


async def test_update_is_checked_too_and_public_targets_pass(
    api: httpx.AsyncClient, strict: Services
) -> None:
    r = await api.post("/agents", json={"name": "a", "webhook_url": "https://93.184.216.34/h"})
    assert r.status_code == 201, r.text
    agent_id = r.json()["agent"]["id"]
    _refused(
        await api.patch(f"/agents/{agent_id}", json={"webhook_url": "http://172.16.0.5/h"}),
        "webhook_url",
    )
    r = await api.patch(f"/agents/{agent_id}", json={"name": "renamed"})
    assert r.status_code == 200


async def test_sip_transfer_destinations_are_checked(
    api: httpx.AsyncClient, strict: Services
) -> None:
    tool = {
        "type": "transferCall",
        "destinations": [
            {"type": "sip", "sipUri": "sip:desk@192.168.1.20"},  # on-premises PBX: fine
            {"type": "sip", "sipUri": "sip:x@169.254.169.254"},
        ],
    }
    r = await api.post(
        "/agents", json={"name": "a", "llm_config": {"provider": "openai", "tools": [tool]}}
    )
    _refused(r, "llm_config.tools.0.destinations.1.sipUri")


async def test_tool_templates_are_checked(api: httpx.AsyncClient, strict: Services) -> None:
    r = await api.post(
        "/tool-templates",
        json={"name": "crm", "type": "function", "url": "http://10.1.1.1/tool"},
    )
    _refused(r, "tool_config.url")


@pytest.mark.parametrize(
    ("host", "port", "allow_loopback", "ok"),
    [
        ("192.168.1.100", 5060, False, True),  # on-premises PBX behind a private address
        ("127.0.0.1", 5070, False, False),
        ("127.0.0.1", 5070, True, True),  # development / tests: sipp on loopback
        ("169.254.169.254", 5060, True, False),
        ("0.0.0.0", 5060, True, False),
        ("224.0.0.1", 5060, True, False),
    ],
)
async def test_trunk_hosts(
    api: httpx.AsyncClient, services: Services, host: str, port: int, allow_loopback: bool, ok: bool
) -> None:
    services.settings.allow_private_urls = allow_loopback
    r = await api.post("/sip-trunks", json={"name": "carrier", "host": host, "port": port})
    if ok:
        assert r.status_code == 201, r.text
    else:
        _refused(r, "host")


async def test_a_trunk_pointing_at_this_server_is_refused(
    api: httpx.AsyncClient, services: Services
) -> None:
    """Even with loopback allowed: an INVITE to our own listener is a billed loop."""
    services.settings.sip_port = port = 5062  # where this server's SIP listener is
    for host in ("127.0.0.1", "localhost"):
        error = _refused(
            await api.post("/sip-trunks", json={"name": "self", "host": host, "port": port}),
            "host",
        )
        assert "own SIP address" in error["message"]


@pytest.mark.parametrize("url", ["https://w\u00fds]", "https://[::1/x", "http://a]b.example/"])
async def test_a_url_python_cannot_split_is_a_400(
    api: httpx.AsyncClient, strict: Services, url: str
) -> None:
    # urlsplit raises ValueError ("Invalid IPv6 URL") on an unbalanced bracket:
    # schemathesis on PostgreSQL found it as a 500 from POST /tool-templates
    r = await api.post("/tool-templates", json={"name": "crm", "type": "function", "url": url})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "tool_config.url"
    r = await api.post("/agents", json={"name": "a", "webhook_url": url})
    assert r.status_code == 400, r.text
