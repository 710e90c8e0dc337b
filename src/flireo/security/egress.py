"""The egress policy: where a customer-chosen target may lead the server.

Every address an API user sets (webhook and tool-server URLs, assistant-request
and analysis via the agent's webhook and ``llm_config.base_url``, SIP trunk
hosts, ``sip:`` transfer destinations) is judged here, once at create/update
time (a 400 naming the field and the setting) and again on every connection.

Address classes:

- **blocked** everywhere, whatever the settings: unspecified (``0.0.0.0``,
  ``::``), multicast, broadcast, reserved, link-local (``169.254/16``,
  ``fe80::/10``) and cloud metadata addresses (``169.254.169.254``,
  ``fd00:ec2::254``, ``100.100.100.200``);
- **loopback** (``127/8``, ``::1``): refused unless ``FLIREO_ALLOW_PRIVATE_URLS``
  (development and tests, where the fakes and sipp listen on loopback);
- **private** (RFC 1918, ``fc00::/7``, CGNAT ``100.64/10``, other non-global
  ranges): HTTP(S) targets need ``FLIREO_ALLOW_PRIVATE_URLS``; SIP targets are
  allowed (an on-premises PBX behind a private address is the normal case);
- **public**: allowed.

A SIP target that is this server's own SIP listener (a local address on our
SIP port) is always refused: an INVITE to ourselves is a billed loop.

HTTP requests to user-set URLs go through :func:`egress_client`, whose
connections resolve the name once, check every address, and connect to the
checked address (the URL's host stays the Host header and TLS SNI), so a DNS
answer that changes between check and connect (DNS rebinding) cannot reach
an internal address. Error messages never contain the resolved addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal
from urllib.parse import urlsplit

import httpcore
import httpx

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Category = Literal["public", "private", "loopback", "blocked"]
#: ``(host, port, socket kind)`` -> addresses, or None when the name does not resolve
Resolver = Callable[[str, int, socket.SocketKind], Awaitable[list["IP"] | None]]

#: the setting that allows private and loopback targets
SETTING = "FLIREO_ALLOW_PRIVATE_URLS"

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


class UnsafeUrl(httpx.ConnectError, ValueError):
    """A target the egress policy refuses (or a malformed URL).

    An ``httpx.ConnectError`` so that code handling connection failures of a
    guarded client treats a refusal the same way; a ``ValueError`` for validators.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _unwrap(ip: IP) -> IP:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def category(ip: IP) -> Category:
    """The address class of ``ip`` (IPv4-mapped IPv6 judged as its IPv4 address)."""
    ip = _unwrap(ip)
    if ip.is_loopback:
        return "loopback"
    if (
        ip in _METADATA
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_link_local
        or ip.is_reserved
        or ip == _BROADCAST
    ):
        return "blocked"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "private"
    if ip.is_private or not ip.is_global:
        return "private"
    return "public"


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _refusal(host: str, what: str, field: str | None) -> str:
    where = f"{field}: " if field else ""
    return f"{where}{host!r} {what}"


def check_http_address(ip: IP, host: str, *, allow_private: bool, field: str | None = None) -> None:
    """Raise :class:`UnsafeUrl` unless an HTTP(S) connection to ``ip`` is allowed."""
    kind = category(ip)
    if kind == "blocked":
        raise UnsafeUrl(_refusal(host, "is a link-local, metadata or reserved address", field))
    if kind != "public" and not allow_private:
        raise UnsafeUrl(
            _refusal(
                host,
                f"is a non-public address (set {SETTING}=1 to allow private targets)",
                field,
            )
        )


def parse_target(url: str) -> tuple[str, int]:
    """Host and port of an http(s) URL; raises :class:`UnsafeUrl` when malformed."""
    try:
        parts = urlsplit(url)  # ValueError on an unbalanced "[" or "]" in the host
        hostname = parts.hostname
    except ValueError as exc:
        raise UnsafeUrl(f"not a well-formed URL: {url!r}") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise UnsafeUrl(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeUrl(f"bad port in URL: {url!r}") from exc
    return hostname, port


#: how long a create/update-time check waits for DNS (then the name counts as not
#: resolving now: accepted, and judged again on use)
LOOKUP_TIMEOUT_S = 2.0


async def _resolve(
    host: str, port: int, kind: socket.SocketKind, within: float | None = None
) -> list[IP] | None:
    """The addresses of ``host``; None when the name does not resolve (``within`` s)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            infos = await loop.getaddrinfo(host, port, type=kind)
    except (socket.gaierror, UnicodeError, TimeoutError):
        return None
    out: list[IP] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in out:
            out.append(ip)
    return out or None


async def check_url(
    url: str,
    *,
    allow_private: bool,
    field: str | None = None,
    require_resolvable: bool = False,
) -> None:
    """Raise :class:`UnsafeUrl` unless every address ``url`` resolves to is allowed.

    A name that does not resolve now (within :data:`LOOKUP_TIMEOUT_S`) is accepted
    unless ``require_resolvable``: the guarded client judges it again on every
    connection (and a temporary DNS failure is a retryable delivery error, not a
    refusal). With ``allow_private`` only blocked addresses are refused, and a
    name is left to the guarded client (no lookup here).
    """
    host, port = parse_target(url)
    if allow_private and _literal(host) is None and not require_resolvable:
        return
    addresses = await _resolve(host, port, socket.SOCK_STREAM, LOOKUP_TIMEOUT_S)
    if addresses is None:
        if require_resolvable:
            raise UnsafeUrl(_refusal(host, "does not resolve", field))
        return
    for ip in addresses:
        check_http_address(ip, host, allow_private=allow_private, field=field)


# --- SIP targets -----------------------------------------------------------------------


def is_local_address(ip: IP) -> bool:
    """Whether ``ip`` belongs to this machine (loopback, or a socket can bind it)."""
    ip = _unwrap(ip)
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if isinstance(ip, ipaddress.IPv6Address) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(ip), 0))
    except OSError:
        return False
    return True


def check_sip_address(
    ip: IP,
    port: int,
    host: str,
    *,
    allow_loopback: bool,
    own_ports: Iterable[int],
    own_hosts: Iterable[str] = (),
    field: str | None = None,
) -> None:
    """Raise :class:`UnsafeUrl` unless sending SIP to ``ip:port`` is allowed."""
    kind = category(ip)
    if kind == "blocked":
        raise UnsafeUrl(_refusal(host, "is a link-local, metadata or reserved address", field))
    own = set(own_ports)
    if port in own and (
        is_local_address(ip) or str(_unwrap(ip)) in {h.strip("[]") for h in own_hosts}
    ):
        raise UnsafeUrl(_refusal(host, "is this server's own SIP address (a call loop)", field))
    if kind == "loopback" and not allow_loopback:
        raise UnsafeUrl(
            _refusal(
                host,
                f"is a loopback address (set {SETTING}=1 to allow it for development)",
                field,
            )
        )


async def check_sip_host(
    host: str,
    port: int,
    *,
    allow_loopback: bool,
    own_ports: Iterable[int],
    own_hosts: Iterable[str] = (),
    field: str | None = None,
    require_resolvable: bool = False,
) -> None:
    """Judge every address of a SIP host (a name that does not resolve is accepted
    unless ``require_resolvable``: it is judged again at dial time)."""
    addresses = await _resolve(host.strip("[]"), port, socket.SOCK_DGRAM, LOOKUP_TIMEOUT_S)
    if addresses is None:
        if require_resolvable:
            raise UnsafeUrl(_refusal(host, "does not resolve", field))
        return
    ports = list(own_ports)
    hosts = list(own_hosts)
    for ip in addresses:
        check_sip_address(
            ip,
            port,
            host,
            allow_loopback=allow_loopback,
            own_ports=ports,
            own_hosts=hosts,
            field=field,
        )


# --- the pinned HTTP client ----------------------------------------------------------------


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, judges every address, connects to the judged one."""

    def __init__(self, allow_private: Callable[[], bool], resolver: Resolver | None = None) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private
        self._resolve = resolver or _resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port, socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"cannot resolve {host!r} in time") from None
        if addresses is None:
            raise httpcore.ConnectError(f"cannot resolve {host!r}")
        allow = self._allow_private()
        for ip in addresses:
            check_http_address(ip, host, allow_private=allow)
        addresses.sort(key=lambda ip: ip.version != 4)  # prefer IPv4, like the resolver
        return await self._inner.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrl("unix sockets are not an allowed target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    allow_private: Callable[[], bool], *, resolver: Resolver | None = None
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection obeys the egress policy
    (``allow_private`` is read per connection: the setting may change).
    ``resolver(host, port, kind)``: the name lookup (default: the system's)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(allow_private, resolver),
    )
    return transport


def egress_client(
    allow_private: Callable[[], bool],
    *,
    timeout: httpx.Timeout | None = None,
    resolver: Resolver | None = None,
) -> httpx.AsyncClient:
    """The client for user-set URLs (no environment proxies: they would connect
    to the target themselves, past the check)."""
    return httpx.AsyncClient(
        transport=guarded_transport(allow_private, resolver=resolver),
        timeout=timeout or httpx.Timeout(10.0, connect=5.0),
        trust_env=False,
    )


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host, port


def operator_origins(settings: object) -> frozenset[tuple[str, str, int]]:
    """The origins of every http(s) URL the operator configured in settings
    (vendor base URLs, an S3 endpoint...)."""
    out: set[tuple[str, str, int]] = set()
    for value in vars(settings).values():
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            try:
                out.add(_origin(httpx.URL(value)))
            except httpx.InvalidURL:
                continue
    return frozenset(out)


class PlatformTransport(httpx.AsyncBaseTransport):
    """The platform's one HTTP transport: requests to an origin the operator
    configured (vendor base URLs in settings) go out as they are; every other
    request (webhooks, tool servers, an agent's ``base_url``...) goes through the
    guarded pool. Separate pools, so a guarded request never reuses a connection
    the unguarded side opened."""

    def __init__(
        self,
        trusted: Callable[[], frozenset[tuple[str, str, int]]],
        allow_private: Callable[[], bool],
    ) -> None:
        self._trusted = trusted
        self._plain = httpx.AsyncHTTPTransport()
        self._guarded = guarded_transport(allow_private)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if _origin(request.url) in self._trusted():
            return await self._plain.handle_async_request(request)
        return await self._guarded.handle_async_request(request)

    async def aclose(self) -> None:
        await self._plain.aclose()
        await self._guarded.aclose()


def platform_client(settings: object, allow_private: Callable[[], bool]) -> httpx.AsyncClient:
    """``Services.http``: see :class:`PlatformTransport`. Environment proxies are
    not used (a proxy connects to the target itself, past the check)."""
    return httpx.AsyncClient(
        transport=PlatformTransport(lambda: operator_origins(settings), allow_private),
        timeout=httpx.Timeout(10.0, connect=5.0),
        trust_env=False,
    )
