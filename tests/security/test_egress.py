"""The egress policy (security/egress.py): address classes, the guarded HTTP
client that connects to the address it checked, and the platform client that
lets only the operator's own vendor URLs past the guard."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx
import pytest

from flireo.security.egress import (
    IP,
    UnsafeUrl,
    category,
    check_sip_address,
    check_url,
    egress_client,
    platform_client,
)
from flireo.settings import Settings
from tests.fakes.server import serve
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", "public"),
        ("2606:2800:220:1:248:1893:25c8:1946", "public"),
        ("10.1.2.3", "private"),
        ("192.168.1.10", "private"),
        ("100.64.0.1", "private"),
        ("fd12::1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "blocked"),
        ("fd00:ec2::254", "blocked"),
        ("100.100.100.200", "blocked"),
        ("169.254.10.1", "blocked"),
        ("fe80::1", "blocked"),
        ("0.0.0.0", "blocked"),
        ("::", "blocked"),
        ("224.0.0.1", "blocked"),
        ("ff02::1", "blocked"),
        ("255.255.255.255", "blocked"),
        ("240.0.0.1", "blocked"),
        ("::ffff:169.254.169.254", "blocked"),
    ],
)
def test_address_classes(address: str, kind: str) -> None:
    assert category(ipaddress.ip_address(address)) == kind


async def test_metadata_is_refused_even_when_private_targets_are_allowed() -> None:
    with pytest.raises(UnsafeUrl, match="metadata"):
        await check_url("http://169.254.169.254/latest/meta-data", allow_private=True)


async def test_a_refusal_names_the_setting_and_the_field() -> None:
    with pytest.raises(UnsafeUrl) as info:
        await check_url("http://10.0.0.8/hook", allow_private=False, field="webhook_url")
    assert "FLIREO_ALLOW_PRIVATE_URLS" in str(info.value)
    assert str(info.value).startswith("webhook_url:")


async def test_a_name_is_judged_by_its_addresses_and_they_are_not_echoed() -> None:
    with pytest.raises(UnsafeUrl) as info:
        await check_url("http://localhost:9/hook", allow_private=False)
    message = str(info.value)
    assert "localhost" in message
    assert "127.0.0.1" not in message
    assert "::1" not in message


def _resolver(answer: str, calls: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int, kind: socket.SocketKind) -> list[IP] | None:
        calls.append(host)
        return [ipaddress.ip_address(answer)]

    return resolve


async def test_the_guarded_client_connects_to_the_address_it_checked() -> None:
    """The name exists only in the guard's resolver: the request reaching the
    receiver proves the connection went to the checked address (no second
    lookup), with the name kept as the Host header."""
    receiver = WebhookReceiver()
    calls: list[str] = []
    with serve(receiver.app()) as srv:
        async with egress_client(lambda: True, resolver=_resolver("127.0.0.1", calls)) as http:
            r = await http.post(f"http://hooks.rebind.test:{srv.port}/hook", content=b"{}")
    assert r.status_code == 200
    assert calls == ["hooks.rebind.test"]
    assert receiver.requests[0].headers["host"] == f"hooks.rebind.test:{srv.port}"


async def test_a_rebound_name_is_refused_at_connect_time_without_echoing_the_address() -> None:
    """check-time said public, connect-time DNS says loopback: the connection
    judges what it connects to."""
    receiver = WebhookReceiver()
    with serve(receiver.app()) as srv:
        async with egress_client(lambda: False, resolver=_resolver("127.0.0.1", [])) as http:
            with pytest.raises(UnsafeUrl) as info:
                await http.post(f"http://hooks.rebind.test:{srv.port}/hook", content=b"{}")
    assert receiver.requests == []
    assert "127.0.0.1" not in str(info.value)
    assert isinstance(info.value, httpx.HTTPError)  # callers' connection-error handling applies


async def test_the_platform_client_guards_every_origin_but_the_operators_vendors() -> None:
    receiver = WebhookReceiver()
    with serve(receiver.app()) as vendor, serve(receiver.app()) as customer:
        settings = Settings(openai_base_url=vendor.url + "/v1", allow_private_urls=False)
        async with platform_client(settings, lambda: settings.allow_private_urls) as http:
            assert (await http.post(vendor.url + "/hook")).status_code == 200
            with pytest.raises(UnsafeUrl):
                await http.post(customer.url + "/hook")
            settings.allow_private_urls = True  # read per connection
            assert (await http.post(customer.url + "/hook")).status_code == 200
    assert len(receiver.requests) == 2


def test_the_old_setting_name_is_an_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIREO_ALLOW_PRIVATE_WEBHOOKS", "1")
    assert Settings().allow_private_urls
    monkeypatch.delenv("FLIREO_ALLOW_PRIVATE_WEBHOOKS")
    monkeypatch.setenv("FLIREO_ALLOW_PRIVATE_URLS", "true")
    assert Settings().allow_private_webhooks


@pytest.mark.parametrize(
    ("address", "port", "allow_loopback", "refused"),
    [
        ("192.168.1.100", 5060, False, None),  # an on-premises PBX
        ("93.184.216.34", 5060, False, None),
        ("127.0.0.1", 5070, False, "loopback"),
        ("127.0.0.1", 5070, True, None),  # development: sipp on loopback
        ("127.0.0.1", 5060, True, "own SIP address"),  # ourselves, even in development
        ("169.254.169.254", 5060, True, "metadata"),
        ("0.0.0.0", 5070, True, "reserved"),
        ("224.0.0.75", 5060, True, "reserved"),
    ],
)
def test_sip_targets(address: str, port: int, allow_loopback: bool, refused: str | None) -> None:
    def check() -> None:
        check_sip_address(
            ipaddress.ip_address(address),
            port,
            address,
            allow_loopback=allow_loopback,
            own_ports=[5060],
            field="host",
        )

    if refused is None:
        check()
    else:
        with pytest.raises(UnsafeUrl, match=refused):
            check()


async def test_a_lookup_that_hangs_is_bounded_by_the_connect_timeout() -> None:
    async def stuck(host: str, port: int, kind: socket.SocketKind) -> list[IP] | None:
        await asyncio.sleep(30)
        return None

    async with egress_client(
        lambda: True, resolver=stuck, timeout=httpx.Timeout(5.0, connect=0.2)
    ) as http:
        with pytest.raises(httpx.ConnectTimeout):
            await http.get("http://slow.dns.test/")
