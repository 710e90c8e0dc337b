"""Create/update-time checks of every target a user sets, by the egress policy
(:mod:`flireo.security.egress`): a refusal is a 400 ``target_not_allowed`` whose
``param`` names the field and whose message names the setting.

The same policy is applied again when the target is used: HTTP through the
guarded client (``Services.http``), SIP in the gateway before each INVITE/REFER.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flireo.errors import InvalidRequest
from flireo.security.egress import UnsafeUrl, check_sip_host, check_url
from flireo.settings import Settings
from flireo.telephony.sip.headers import parse_any_uri
from flireo.telephony.sip.routing import next_hop
from flireo.telephony.sip.uri import SipUri

CODE = "target_not_allowed"
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def own_sip(settings: Settings) -> tuple[set[int], set[str]]:
    """This server's SIP port(s) (UDP/TCP, and TLS when it listens) and the
    addresses it advertises."""
    hosts = {h for h in (settings.sip_public_host, settings.sip_host) if h and h not in _WILDCARDS}
    ports = {settings.sip_port}
    if settings.sip_tls_cert_file is not None:
        ports.add(settings.sip_tls_port)
    return ports, hosts


def _refused(exc: UnsafeUrl, field: str) -> InvalidRequest:
    return InvalidRequest(str(exc), param=field, code=CODE)


async def check_http_target(url: str, settings: Settings, field: str) -> None:
    try:
        await check_url(url, allow_private=settings.allow_private_urls, field=field)
    except UnsafeUrl as exc:
        raise _refused(exc, field) from None


def sip_hop(uri: str) -> tuple[str, int]:
    """Host and port a ``sip:``/``sips:`` URI is sent to; ValueError when it is not one."""
    parsed = parse_any_uri(uri)
    if not isinstance(parsed, SipUri) or not parsed.host:
        raise ValueError(f"not a SIP URI: {uri!r}")
    hop = next_hop(parsed)
    return hop.host, hop.port


async def check_sip_target(
    host: str,
    port: int,
    settings: Settings,
    field: str,
    *,
    own_ports: Iterable[int] = (),
    own_hosts: Iterable[str] = (),
) -> None:
    ports, hosts = own_sip(settings)
    try:
        await check_sip_host(
            host,
            port,
            allow_loopback=settings.allow_private_urls,
            own_ports=ports | set(own_ports),
            own_hosts=hosts | set(own_hosts),
            field=field,
        )
    except UnsafeUrl as exc:
        raise _refused(exc, field) from None


async def check_sip_uri_target(uri: str, settings: Settings, field: str) -> None:
    try:
        host, port = sip_hop(uri)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}", param=field) from None
    await check_sip_target(host, port, settings, field)


async def check_tool(tool: dict[str, Any], settings: Settings, field: str) -> None:
    """A tool (function: ``url``; transferCall: ``sip`` destinations)."""
    url = tool.get("url")
    if isinstance(url, str) and url:
        await check_http_target(url, settings, f"{field}.url")
    for index, destination in enumerate(tool.get("destinations") or []):
        if not isinstance(destination, dict):
            continue
        uri = destination.get("sipUri") or destination.get("sip_uri")
        if isinstance(uri, str) and uri:
            await check_sip_uri_target(uri, settings, f"{field}.destinations.{index}.sipUri")


async def check_agent_targets(
    settings: Settings,
    *,
    webhook_url: str | None,
    llm_config: dict[str, Any] | None,
) -> None:
    """Every URL and SIP target of an agent as stored (template copies included)."""
    if webhook_url:
        await check_http_target(webhook_url, settings, "webhook_url")
    llm = llm_config or {}
    base_url = llm.get("base_url")
    if isinstance(base_url, str) and base_url:
        await check_http_target(base_url, settings, "llm_config.base_url")
    for index, tool in enumerate(llm.get("tools") or []):
        if isinstance(tool, dict):
            await check_tool(tool, settings, f"llm_config.tools.{index}")
