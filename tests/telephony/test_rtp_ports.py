"""RTP port allocation: even ports of the range, least recently used first, released on close."""

from __future__ import annotations

import socket

import pytest

from flireo.telephony.rtp.ports import PortAllocator, PortsExhausted
from flireo.telephony.rtp.session import RtpSession


def test_only_even_ports_whose_rtcp_neighbour_fits_the_range() -> None:
    ports = PortAllocator(10_001, 10_010)
    got = [ports.acquire() for _ in range(ports.capacity)]
    assert got == [10_002, 10_004, 10_006, 10_008]
    with pytest.raises(PortsExhausted):
        ports.acquire()


def test_a_start_port_rotates_the_order_and_keeps_every_port() -> None:
    ports = PortAllocator(10_000, 10_009, start=10_005)
    got = [ports.acquire() for _ in range(ports.capacity)]
    assert got == [10_006, 10_008, 10_000, 10_002, 10_004]


def test_released_ports_are_reused_last() -> None:
    ports = PortAllocator(20_000, 20_007)
    a, b = ports.acquire(), ports.acquire()
    ports.release(a)
    ports.release(a)  # twice: harmless
    ports.release(5)  # never handed out: ignored
    assert [ports.acquire(), ports.acquire(), ports.acquire()] == [20_004, 20_006, a]
    assert ports.in_use == 4
    assert b == 20_002


@pytest.mark.parametrize(
    ("low", "high"), [(80, 2000), (5000, 5000), (5001, 5002), (60_000, 70_000)]
)
def test_bad_ranges_are_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError):
        PortAllocator(low, high)


def free_even_range(width: int = 40) -> tuple[int, int]:
    """A port range nobody on this machine is likely to use right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
    base = min(base, 60_000) & ~1
    return base, base + width


async def test_sessions_bind_from_the_range_skip_busy_ports_and_release_on_close() -> None:
    low, high = free_even_range()
    ports = PortAllocator(low, high)
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            busy.bind(("127.0.0.1", low))  # another program holds the first port
        except OSError:
            pytest.skip("the chosen port range is in use")
        first = RtpSession(local_host="127.0.0.1", ports=ports)
        second = RtpSession(local_host="127.0.0.1", ports=ports)
        assert await first.bind() == low + 2
        assert await second.bind() == low + 4
        assert ports.in_use == 2
        await first.aclose()
        await second.aclose()
        assert ports.in_use == 0
    finally:
        busy.close()
