"""Check that the DNS records a sending domain needs are published (dnspython)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from flireo.domain.domains import DnsCheck


def make_resolver(nameservers: Sequence[str], timeout: float) -> dns.asyncresolver.Resolver:
    """The system resolver, or the given ``host`` / ``host:port`` nameservers."""
    if not nameservers:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = []
        for entry in nameservers:
            host, sep, port = entry.rpartition(":")
            if sep and port.isdigit() and ":" not in host:  # "127.0.0.1:5353"
                resolver.nameservers.append(host)
                resolver.port = int(port)
            else:  # "10.0.0.2" or an IPv6 address
                resolver.nameservers.append(entry)
    resolver.lifetime = timeout
    resolver.timeout = timeout
    return resolver


def fqdn(name: str, domain: str) -> str:
    """Resend gives names relative to the domain (``send``) or absolute."""
    name = name.rstrip(".").lower()
    domain = domain.rstrip(".").lower()
    if name in ("", "@"):
        return domain
    return name if name == domain or name.endswith("." + domain) else f"{name}.{domain}"


def _norm(value: str) -> str:
    return value.strip().strip('"').rstrip(".").lower()


async def _answers(resolver: dns.asyncresolver.Resolver, name: str, rtype: str) -> list[str]:
    try:
        answer = await resolver.resolve(name, rtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    except dns.exception.Timeout:
        return []
    found: list[str] = []
    for rdata in answer:
        if rtype == "TXT":
            found.append(b"".join(rdata.strings).decode(errors="replace"))
        elif rtype == "MX":
            found.append(f"{rdata.preference} {rdata.exchange.to_text()}")
        else:
            found.append(rdata.to_text())
    return found


async def check_records(
    resolver: dns.asyncresolver.Resolver, domain: str, records: Sequence[dict[str, Any]]
) -> list[DnsCheck]:
    checks = []
    for record in records:
        rtype = str(record.get("type", "")).upper()
        name = fqdn(str(record.get("name", "")), domain)
        expected = str(record.get("value", ""))
        found = await _answers(resolver, name, rtype) if rtype in ("TXT", "MX", "CNAME") else []
        if rtype == "MX":
            want_priority = record.get("priority")
            ok = any(
                _norm(f.split(" ", 1)[1]) == _norm(expected)
                and (want_priority is None or f.split(" ", 1)[0] == str(want_priority))
                for f in found
            )
        else:
            ok = any(_norm(f) == _norm(expected) for f in found)
        checks.append(DnsCheck(type=rtype, name=name, expected=expected, found=found, ok=ok))
    return checks
