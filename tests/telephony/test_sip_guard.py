"""Edge security policy: flood bans, scanner User-Agents, trunk IP pinning.
Time is an injected clock; nothing sleeps."""

from __future__ import annotations

import pytest

from flireo.telephony.sip.guard import SourceGuard, ip_allowed, ip_in, is_scanner

FLOODER = "127.0.0.9"
CALLER = "127.0.0.1"
TRUNK = "127.0.0.5"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_100_invites_in_one_second_is_banned_after_16() -> None:
    clock = Clock()
    guard = SourceGuard(clock=clock)  # defaults: 16 per 2 s, 300 s ban
    decisions = []
    for i in range(100):
        clock.now = 1000.0 + i * 0.01
        decisions.append(guard.check(FLOODER))
    assert [d.allowed for d in decisions] == [True] * 16 + [False] * 84
    assert decisions[16].reason == "flood"
    assert decisions[16].newly_banned
    assert decisions[16].banned_until == pytest.approx(1000.16 + 300)
    assert {d.reason for d in decisions[17:]} == {"banned"}
    assert not any(d.newly_banned for d in decisions[17:])
    assert guard.is_banned(FLOODER)
    assert guard.banned == 1


def test_the_ban_expires_after_300_seconds_and_a_new_flood_bans_again() -> None:
    clock = Clock()
    guard = SourceGuard(clock=clock)
    for _ in range(17):
        guard.check(FLOODER)
    banned_at = clock.now
    clock.now = banned_at + 150
    assert guard.check(FLOODER).reason == "banned"  # slow requests do not lift it
    clock.now = banned_at + 299.99
    assert not guard.check(FLOODER).allowed
    clock.now = banned_at + 300
    assert guard.check(FLOODER).allowed
    assert not guard.is_banned(FLOODER)
    for _ in range(15):
        assert guard.check(FLOODER).allowed
    assert guard.check(FLOODER).newly_banned


def test_trunk_addresses_are_never_banned_or_tracked() -> None:
    clock = Clock()
    guard = SourceGuard(clock=clock)
    for i in range(1000):
        clock.now = 1000.0 + i * 0.001
        decision = guard.check(TRUNK, exempt=True)
        assert decision.allowed
        assert decision.reason == "exempt"
    assert not guard.is_banned(TRUNK)
    assert guard.tracked == 0


def test_a_legitimate_caller_is_unaffected_by_someone_elses_flood() -> None:
    clock = Clock()
    guard = SourceGuard(clock=clock)
    caller = []
    for i in range(1000):  # 1000 requests/s from the flooder for 1 s
        clock.now = 1000.0 + i * 0.001
        guard.check(FLOODER)
        if i % 100 == 0:  # and a call setup's requests from a real caller
            caller.append(guard.check(CALLER))
    assert all(d.allowed for d in caller)
    assert guard.is_banned(FLOODER)
    assert not guard.is_banned(CALLER)


def test_the_17th_request_within_two_seconds_bans() -> None:
    clock = Clock(0.0)
    guard = SourceGuard(limit=16, window_s=2.0, clock=clock)
    for _ in range(16):
        assert guard.check(CALLER).allowed  # at the limit, not over it
    clock.now = 1.99
    assert guard.check(CALLER).newly_banned


def test_the_window_slides() -> None:
    clock = Clock(0.0)
    guard = SourceGuard(limit=16, window_s=2.0, clock=clock)
    for _ in range(16):
        assert guard.check(CALLER).allowed
    clock.now = 2.0
    assert guard.check(CALLER).allowed  # the t=0 requests have left the window
    clock.now = 2.5
    for _ in range(15):
        assert guard.check(CALLER).allowed
    assert guard.check(CALLER).newly_banned  # 17 since t=2.0


def test_a_steady_legitimate_rate_is_never_banned() -> None:
    clock = Clock(0.0)
    guard = SourceGuard(clock=clock)
    for i in range(10_000):  # 7.5 requests/s for over 20 minutes
        clock.now = i / 7.5
        assert guard.check(CALLER).allowed


def test_memory_stays_bounded_under_a_flood_from_100k_addresses() -> None:
    clock = Clock(0.0)
    guard = SourceGuard(clock=clock, max_sources=10_000)
    for i in range(100_000):
        clock.now = i * 1e-5  # all within one window
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        assert guard.check(ip).allowed
        assert guard.tracked <= 10_000
    assert guard.tracked == 10_000
    assert guard.banned == 0
    # once the window has passed, idle sources are forgotten
    clock.now += 2.5
    guard.check(CALLER)
    assert guard.tracked == 1


def test_a_ban_survives_churn_of_tracked_addresses() -> None:
    clock = Clock(0.0)
    guard = SourceGuard(clock=clock, max_sources=100)
    for _ in range(17):
        guard.check(FLOODER)
    for i in range(10_000):
        guard.check(f"10.0.{i >> 8}.{i & 255}")
    assert guard.tracked == 100
    assert guard.check(FLOODER).reason == "banned"


def test_bans_are_capped_too() -> None:
    clock = Clock(0.0)
    guard = SourceGuard(limit=1, clock=clock, max_bans=100)
    for i in range(1000):
        ip = f"10.1.{i >> 8}.{i & 255}"
        guard.check(ip)
        assert guard.check(ip).newly_banned
        assert guard.banned <= 100
    assert guard.banned == 100
    assert guard.is_banned("10.1.3.231")  # the most recent bans are kept
    assert not guard.is_banned("10.1.0.0")


def test_unban() -> None:
    guard = SourceGuard(limit=1, clock=Clock())
    guard.check(FLOODER)
    guard.check(FLOODER)
    guard.unban(FLOODER)
    assert guard.check(FLOODER).allowed


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"window_s": 0}, {"ban_s": -1}, {"max_sources": 0}, {"max_bans": 0}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SourceGuard(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "user_agent",
    [
        "friendly-scanner",
        "Friendly-Scanner",
        "sipcli/v1.8",
        "sipvicious 0.3.0",
        "SIPVicious",
        "VaxSIPUserAgent/3.1",
        "pplsip",
        "iWar 0.8",
        "sundayddr",
        "sip-scan",
        "SIPScan 1.2",
        "smap 0.6.0",
        "siparmyknife",
        "SIVuS",
    ],
)
def test_known_scanners_are_recognised(user_agent: str) -> None:
    assert is_scanner(user_agent)


@pytest.mark.parametrize(
    "user_agent",
    [
        None,
        "",
        "sipp",
        "Asterisk PBX 20.5.0",
        "FreeSWITCH-mod_sofia/1.10.10",
        "Linphone/5.2.0 (belle-sip/5.2.0)",
        "Zoiper rv2.10",
        "MicroSIP/3.21.3",
        "Cisco-SIPGateway/IOS-15.x",  # genuine gateways send it too
        "sipsak 0.9.8",  # health checks
        "Asmap phone",  # only whole words count
        "flireo",
    ],
)
def test_ordinary_user_agents_are_not_scanners(user_agent: str | None) -> None:
    assert not is_scanner(user_agent)


def test_no_pins_allow_everything() -> None:
    assert ip_allowed("198.51.100.7", [])
    assert ip_allowed("2001:db8::1", [])
    assert ip_allowed("198.51.100.7", ["", "  "])


def test_pinned_addresses_and_cidrs() -> None:
    pins = ["203.0.113.10", "198.51.100.0/24", "2001:db8:1::/48"]
    assert ip_allowed("203.0.113.10", pins)
    assert not ip_allowed("203.0.113.11", pins)
    assert ip_allowed("198.51.100.200", pins)
    assert not ip_allowed("198.51.101.1", pins)
    assert ip_allowed("2001:db8:1:ffff::5", pins)
    assert not ip_allowed("2001:db8:2::5", pins)
    assert ip_allowed(" 203.0.113.10 ", [" 203.0.113.10 "])
    assert ip_allowed("10.1.2.3", ["10.1.2.0/255.255.255.0"])
    assert ip_allowed("10.1.2.3", ["10.1.2.77/24"])  # host bits in a pin are forgiven


def test_ipv4_mapped_sources_match_ipv4_pins() -> None:
    assert ip_allowed("::ffff:198.51.100.9", ["198.51.100.0/24"])
    assert not ip_allowed("::ffff:192.0.2.9", ["198.51.100.0/24"])


def test_garbage_never_matches_and_bad_pins_fail_closed() -> None:
    assert not ip_allowed("not-an-ip", ["198.51.100.0/24"])
    assert not ip_allowed("198.51.100.9:5060", ["198.51.100.0/24"])
    assert ip_allowed("198.51.100.9", ["bogus", "198.51.100.0/24"])  # bad entries skipped
    assert not ip_allowed("198.51.100.9", ["bogus"])  # only bad entries: nobody matches
    assert ip_allowed("198.51.100.9", iter(["198.51.100.9"]))


def test_ip_in_matches_trunk_networks_and_nothing_when_empty() -> None:
    trunks = {"203.0.113.10", "198.51.100.0/24"}
    assert ip_in("198.51.100.77", trunks)  # a pinned network, not just exact addresses
    assert ip_in("::ffff:203.0.113.10", trunks)
    assert not ip_in("192.0.2.1", trunks)
    assert not ip_in("192.0.2.1", [])  # unlike ip_allowed: no trunks, nobody exempt
    assert not ip_in("192.0.2.1", ["bogus", ""])
