"""Where a request goes: loose/strict routing with a route set (RFC 3261
§12.2.1.1, §16.12) and the next hop of a URI (RFC 3263 without NAPTR/SRV: the
URI's host, port or 5060 (5061 over TLS), and its ``transport`` parameter;
``sips:`` URIs go over TLS)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace

from flireo.telephony.sip.errors import SipParseError
from flireo.telephony.sip.headers import NameAddr
from flireo.telephony.sip.transport import Flow, is_ip
from flireo.telephony.sip.uri import SipUri


@dataclass(frozen=True, slots=True)
class NextHop:
    host: str  # an IP literal or a name still to resolve
    port: int
    transport: str  # "UDP" | "TCP" | "TLS"


def next_hop(uri: SipUri, *, default_transport: str = "UDP") -> NextHop:
    transport = (uri.param("transport") or "").upper()
    if uri.scheme == "sips":
        transport = "TLS"  # sips: is TLS on every hop (RFC 3261 §26.2.2)
    elif transport not in ("UDP", "TCP", "TLS"):
        transport = default_transport
    default_port = 5061 if transport == "TLS" else 5060
    return NextHop(uri.host.strip("[]"), uri.port or default_port, transport)


def route_request(remote_target: str, route_set: Sequence[str]) -> tuple[str, list[str]]:
    """The Request-URI and Route header values of an in-dialog request.

    A loose router (``;lr`` on the first route) keeps the remote target as
    Request-URI; a strict router gets it as the Request-URI and the remote
    target goes last in the Route headers.
    """
    if not route_set:
        return remote_target, []
    first = NameAddr.parse(route_set[0])
    if isinstance(first.uri, SipUri) and first.uri.param("lr") is not None:
        return remote_target, list(route_set)
    strict_uri = first.uri
    if isinstance(strict_uri, SipUri):
        strict_uri = replace(strict_uri, headers="")
    return str(strict_uri), [*route_set[1:], f"<{remote_target}>"]


def first_hop_uri(request_uri: str, routes: Sequence[str]) -> SipUri:
    """The URI whose host receives the request: the first Route, else the Request-URI."""
    uri = NameAddr.parse(routes[0]).uri if routes else NameAddr.parse(f"<{request_uri}>").uri
    if not isinstance(uri, SipUri):
        raise SipParseError(f"cannot route to {uri}")
    return uri


async def resolve(hop: NextHop) -> Flow:
    """An IP flow for ``hop`` (asynchronous DNS A/AAAA lookup when it is a name)."""
    if is_ip(hop.host):
        return Flow(hop.transport, hop.host, hop.port)
    loop = asyncio.get_running_loop()
    kind = socket.SOCK_DGRAM if hop.transport == "UDP" else socket.SOCK_STREAM
    infos = await loop.getaddrinfo(hop.host, hop.port, type=kind)
    if not infos:
        raise OSError(f"cannot resolve {hop.host}")
    infos.sort(key=lambda info: info[0] != socket.AF_INET)  # prefer IPv4
    address = infos[0][4]
    name = hop.host if hop.transport == "TLS" else None  # the certificate names the host
    return Flow(hop.transport, str(address[0]), int(address[1]), name)


def flow_if_literal(hop: NextHop) -> Flow | None:
    """The flow for ``hop`` when no DNS lookup is needed."""
    return Flow(hop.transport, hop.host, hop.port) if is_ip(hop.host) else None


def dialog_peer(flow: Flow, remote_target: str, route_set: Sequence[str]) -> Flow:
    """Where a dialog's requests go. On TCP: the connection the dialog was
    set up on (connection reuse). On UDP: the next hop of the route set or the
    remote target when it is an IP literal, else ``flow`` (the address the
    dialog-creating message came from or went to)."""
    if flow.reliable:
        return flow
    try:
        hop = next_hop(first_hop_uri(remote_target, route_set))
    except ValueError:
        return flow
    peer = flow_if_literal(hop)
    if peer is None or peer.transport != flow.transport:
        return flow
    return peer


def reconnect_flow(
    remote_target: str, route_set: Sequence[str], transport: str = "TCP"
) -> Flow | None:
    """A TCP (or TLS) flow to a dialog's next hop (its route set or remote target)
    when that is an IP literal: for requests after the dialog's connection closed."""
    try:
        hop = next_hop(first_hop_uri(remote_target, route_set), default_transport=transport)
    except ValueError:
        return None
    kind = "TLS" if "TLS" in (transport, hop.transport) else "TCP"  # never down to TCP
    return flow_if_literal(NextHop(hop.host, hop.port, kind))
