"""A tiny authoritative DNS server on a loopback UDP port (dnspython messages).

with DnsServer({("send.example.com", "TXT"): ['"v=spf1 ~all"']}) as dns:
    settings.dns_nameservers = [dns.address]
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Zone = dict[tuple[str, str], list[str]]


class DnsServer:
    def __init__(self, zone: Zone) -> None:
        self.zone = {
            (name.rstrip(".").lower(), rtype.upper()): v for (name, rtype), v in zone.items()
        }
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, rtype: str, values: list[str]) -> None:
        self.zone[(name.rstrip(".").lower(), rtype.upper())] = values

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # garbage on the port: ignore, like a real server
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            rtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rtype))
            values = self.zone.get((name, rtype))
            if values:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", rtype, *values))
            elif not any(n == name for n, _ in self.zone):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self._sock.sendto(response.to_wire(), peer)

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
