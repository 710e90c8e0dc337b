"""xAI realtime connect failures against the local xAI realtime fake: refused
handshakes (401, 429) and a connect that never completes within the client's
``connect_timeout`` (an upgrade left unanswered, or a ``session.update`` never
answered with ``session.updated``).

What the client does (``flireo.providers.realtime.xai``): a refused handshake
is a ``ProviderError`` carrying the HTTP status and the vendor's message,
retryable for 429 (with its ``Retry-After`` in ``retry_after``) and not for
401; a connect that does not complete (upgrade, then ``session.updated``)
within the one ``connect_timeout`` is a retryable ``ProviderError`` ("timed
out"). Nothing is retried inside the client.
"""

from __future__ import annotations

import time

import pytest

from flireo.errors import ProviderError
from flireo.providers.realtime.xai import XaiRealtimeModel
from tests.fakes.xai_realtime import FakeXaiRealtime
from tests.providers.speech_vendors.audio_checks import eventually

CONNECT_TIMEOUT = 0.3


def make_model(fake: FakeXaiRealtime) -> XaiRealtimeModel:
    return XaiRealtimeModel(
        api_key=fake.api_key,
        model="grok-voice-latest",
        url=fake.url,
        connect_timeout=CONNECT_TIMEOUT,
    )


async def test_a_401_at_the_handshake_is_a_non_retryable_error_with_xais_message(
    fake_xai_realtime: FakeXaiRealtime,
) -> None:
    fake_xai_realtime.reject_next(
        401, "Incorrect API key provided: xa***ey. You can obtain an API key from console.x.ai."
    )
    model = make_model(fake_xai_realtime)

    with pytest.raises(ProviderError) as caught:
        await model.connect(instructions="hi")

    error = caught.value
    assert error.provider == "xai_realtime"
    assert (error.status, error.retryable) == (401, False)
    assert error.message.startswith("HTTP 401: Incorrect API key provided")
    assert fake_xai_realtime.received == []  # no session.update was ever sent
    assert len(fake_xai_realtime.headers) == 1  # and the client did not try again


@pytest.mark.parametrize("retry_after", [None, "5"])
async def test_a_429_at_the_handshake_is_a_retryable_error(
    fake_xai_realtime: FakeXaiRealtime, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else None
    fake_xai_realtime.reject_next(
        429, "Too many concurrent sessions for this team.", headers=headers
    )
    model = make_model(fake_xai_realtime)
    started = time.monotonic()

    with pytest.raises(ProviderError) as caught:
        await model.connect(instructions="hi")

    assert time.monotonic() - started < 2  # fails at once, Retry-After or not
    error = caught.value
    assert (error.status, error.retryable) == (429, True)
    assert error.retry_after == (float(retry_after) if retry_after else None)
    assert error.message == "HTTP 429: Too many concurrent sessions for this team."
    assert len(fake_xai_realtime.headers) == 1


async def test_after_a_refused_handshake_the_next_connect_works(
    fake_xai_realtime: FakeXaiRealtime,
) -> None:
    fake_xai_realtime.reject_next(429)
    model = make_model(fake_xai_realtime)

    with pytest.raises(ProviderError):
        await model.connect(instructions="hi")
    session = await model.connect(instructions="hi", voice="ara")
    await session.aclose()

    assert fake_xai_realtime.session["voice"] == "ara"
    assert len(fake_xai_realtime.headers) == 2


async def failed_connect(fake: FakeXaiRealtime) -> tuple[ProviderError, float]:
    """The error a connect ends with, and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        await make_model(fake).connect(instructions="hi")
    return caught.value, time.monotonic() - started


async def test_an_upgrade_left_unanswered_times_out_within_the_connect_timeout(
    fake_xai_realtime: FakeXaiRealtime,
) -> None:
    fake_xai_realtime.stall_next_handshake(10.0)
    error, elapsed = await failed_connect(fake_xai_realtime)

    assert CONNECT_TIMEOUT <= elapsed < 2
    assert error.retryable
    assert error.status is None
    assert error.message.startswith("timed out")
    assert len(fake_xai_realtime.headers) == 1  # the upgrade did reach the server
    assert fake_xai_realtime.received == []


async def test_a_session_update_never_answered_times_out_and_closes_the_socket(
    fake_xai_realtime: FakeXaiRealtime,
) -> None:
    fake_xai_realtime.answer_session_update = False
    error, elapsed = await failed_connect(fake_xai_realtime)

    assert CONNECT_TIMEOUT <= elapsed < 2
    assert error.retryable
    assert error.message.startswith("timed out")
    assert len(fake_xai_realtime.received_of("session.update")) == 1
    await eventually(lambda: not fake_xai_realtime.connected)  # the client hung up


async def test_a_slow_upgrade_and_an_unanswered_session_update_share_one_deadline(
    fake_xai_realtime: FakeXaiRealtime,
) -> None:
    # the upgrade takes most of the connect timeout, then session.updated never comes:
    # the whole connect still ends at connect_timeout (not upgrade + another timeout)
    connect_timeout = 1.0
    fake_xai_realtime.stall_next_handshake(0.8)
    fake_xai_realtime.answer_session_update = False
    model = XaiRealtimeModel(
        api_key=fake_xai_realtime.api_key,
        url=fake_xai_realtime.url,
        connect_timeout=connect_timeout,
    )
    started = time.monotonic()

    with pytest.raises(ProviderError) as caught:
        await model.connect(instructions="hi")
    elapsed = time.monotonic() - started

    assert connect_timeout <= elapsed < connect_timeout + 0.5  # one deadline, not 1.8 s
    assert caught.value.retryable
    assert caught.value.message.startswith("timed out")
    assert len(fake_xai_realtime.received_of("session.update")) == 1  # the upgrade did complete
    await eventually(lambda: not fake_xai_realtime.connected)  # and the client hung up
