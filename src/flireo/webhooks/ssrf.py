"""Refuse webhook and tool URLs that point into our own network.

A customer-controlled URL resolving to loopback, link-local (cloud metadata),
private or otherwise non-public ranges is refused unless the operator allows
private targets (``FLIREO_ALLOW_PRIVATE_WEBHOOKS=1``, used by tests and local
development).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    """The URL is malformed or targets a non-public address."""


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
    )


def parse_target(url: str) -> tuple[str, int]:
    """Host and port of an http(s) URL; raises :class:`UnsafeUrl` when malformed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeUrl(f"bad port in URL: {url!r}") from exc
    return parts.hostname, port


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise :class:`UnsafeUrl` unless every address ``url`` resolves to is public."""
    host, port = parse_target(url)
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UnsafeUrl(f"cannot resolve {host!r}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for addr in addresses:
        if not _is_public(addr):
            raise UnsafeUrl(f"{host!r} resolves to non-public address {addr}")
