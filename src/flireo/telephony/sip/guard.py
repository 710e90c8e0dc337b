"""Edge security for SIP, as pure policy (no sockets, time injected):

- :class:`SourceGuard`: per-source request rate limit with a temporary ban, the
  scheme of Kamailio's stock ``kamailio.cfg`` (``WITH_ANTIFLOOD``: pike at 16
  requests per 2 s, an ``ipban`` table with a 300 s autoexpire); trunk
  addresses are exempt.
- :func:`is_scanner`: User-Agents of known SIP scanning tools.
- :func:`ip_allowed`: a trunk's source-address pinning (addresses or CIDRs);
  :func:`ip_in` for matching trunk addresses to exempt.

The transport calls ``check`` for each out-of-dialog request (at least each
INVITE) before parsing further, and drops the request silently when it is not
allowed: answering a flood only helps it. UDP source addresses can be spoofed,
so a ban can be aimed at someone else; trunk addresses are exempt for that
reason too.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

Reason = Literal["ok", "exempt", "flood", "banned"]


@dataclass(frozen=True, slots=True)
class Decision:
    """``allowed`` or not, and why: ``flood`` is the request that caused the ban
    (log it once), ``banned`` every request dropped while it lasts."""

    allowed: bool
    reason: Reason
    banned_until: float | None = None

    @property
    def newly_banned(self) -> bool:
        return self.reason == "flood"


_OK = Decision(True, "ok")
_EXEMPT = Decision(True, "exempt")


class SourceGuard:
    """Count requests per source address in a sliding window of ``window_s``;
    the request over ``limit`` bans the source for ``ban_s`` (until then every
    request from it is refused, however slow).

    Memory is bounded whatever the traffic: a source keeps at most ``limit``
    timestamps, sources idle for a whole window are forgotten, and at most
    ``max_sources`` sources (least recently seen go first) and ``max_bans``
    bans (soonest to expire go first) are kept. A flood from 100k addresses
    costs at most ``max_sources`` small entries.
    """

    def __init__(
        self,
        limit: int = 16,
        window_s: float = 2.0,
        ban_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = 65_536,
        max_bans: int = 65_536,
    ) -> None:
        if limit < 1 or window_s <= 0 or ban_s < 0 or max_sources < 1 or max_bans < 1:
            raise ValueError("limit, window_s, max_sources and max_bans must be positive")
        self.limit = limit
        self.window_s = window_s
        self.ban_s = ban_s
        self._clock = clock
        self._max_sources = max_sources
        self._max_bans = max_bans
        # least recently seen first; each holds the times of its recent requests
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        # ban end times, in the order they were set (= the order they expire)
        self._bans: OrderedDict[str, float] = OrderedDict()

    def check(self, ip: str, *, exempt: bool = False) -> Decision:
        """Count one request from ``ip`` and decide whether to handle it."""
        if exempt:
            return _EXEMPT
        now = self._clock()
        self._expire(now)
        until = self._bans.get(ip)
        if until is not None:
            return Decision(False, "banned", until)
        times = self._recent.pop(ip, None)
        if times is None:
            times = deque(maxlen=self.limit)
        horizon = now - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= self.limit:
            return self._ban(ip, now)
        times.append(now)
        self._recent[ip] = times  # re-inserted: now the most recently seen
        while len(self._recent) > self._max_sources:
            self._recent.popitem(last=False)
        return _OK

    def is_banned(self, ip: str) -> bool:
        self._expire(self._clock())
        return ip in self._bans

    def unban(self, ip: str) -> None:
        self._bans.pop(ip, None)
        self._recent.pop(ip, None)

    @property
    def tracked(self) -> int:
        """Sources whose recent requests are being counted."""
        return len(self._recent)

    @property
    def banned(self) -> int:
        return len(self._bans)

    def _ban(self, ip: str, now: float) -> Decision:
        self._recent.pop(ip, None)
        until = now + self.ban_s
        self._bans[ip] = until
        while len(self._bans) > self._max_bans:
            self._bans.popitem(last=False)
        return Decision(False, "flood", until)

    def _expire(self, now: float) -> None:
        while self._bans:
            ip, until = next(iter(self._bans.items()))
            if until > now:
                break
            del self._bans[ip]
        horizon = now - self.window_s
        while self._recent:
            times = next(iter(self._recent.values()))
            if times and times[-1] > horizon:
                break
            self._recent.popitem(last=False)


# User-Agents of SIP scanning and brute-forcing tools. Sources: the scanner drop
# in Kamailio's stock configuration and KEMI examples (friendly-scanner, sipcli,
# VaxSIPUserAgent), and the User-Agent blocklists commonly used with fail2ban and
# iptables string matching (sipvicious, sip-scan/sipscan, iWar, pplsip, sundayddr,
# smap, siparmyknife, SIVuS, friendly-request). Deliberately left out, because
# real equipment and tools send them too: "Cisco-SIPGateway" (genuine Cisco
# gateways), "sipsak" (used for health checks), softphone names (eyeBeam,
# X-Lite, Zoiper...), "Asterisk PBX"/"FreePBX", and "sipp" (our own tests).
SCANNER_USER_AGENTS: tuple[str, ...] = (
    "friendly-scanner",
    "friendly-request",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "VaxSIPUserAgent",
    "VaxIPUserAgent",
    "pplsip",
    "iWar",
    "sundayddr",
    "smap",
    "siparmyknife",
    "sivus",
)
_SCANNER = re.compile(
    r"(?<![a-z0-9])(?:" + "|".join(re.escape(n) for n in SCANNER_USER_AGENTS) + r")(?![a-z0-9])",
    re.IGNORECASE,
)


def is_scanner(user_agent: str | None) -> bool:
    """The User-Agent names a known SIP scanner (as a whole word, any case)."""
    return bool(user_agent) and _SCANNER.search(user_agent or "") is not None


def ip_allowed(ip: str, pinned: Iterable[str]) -> bool:
    """``ip`` is one of the ``pinned`` addresses or inside one of its CIDRs; an
    empty list allows everything. A list holding only invalid entries allows
    nothing (see :func:`ip_in`).
    """
    entries = [str(p).strip() for p in pinned]
    return not any(entries) or ip_in(ip, entries)


def ip_in(ip: str, entries: Iterable[str]) -> bool:
    """``ip`` is one of ``entries`` (addresses or CIDRs); no entries, no match.
    For exempting trunk addresses from :class:`SourceGuard`, where pins may be
    networks. An IPv4 source seen as IPv4-mapped IPv6 (a dual-stack socket)
    matches IPv4 entries; entries that are not addresses or networks are
    ignored, and a source that is not an address never matches.
    """
    networks = [n for n in (_network(str(e).strip()) for e in entries) if n is not None]
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not entry:
        return None
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
