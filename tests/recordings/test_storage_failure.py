"""The disk fails while a recorded call ends: the call still ends normally, once; the
end-of-call report says ``recordingError``; the upload is retried from its queue
row until it succeeds, and then the recording is served."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flireo.recordings.uploads import RecordingUploader
from flireo.services.container import Services
from flireo.settings import Settings
from tests.api.conftest import (
    Org,
    _drop_pg_schema,
    api,
    backend,
    client,
    keyring,
    make_org,
    org,
    services,
)
from tests.fakes.openai_chat import FakeOpenAI, fake_openai
from tests.recordings.call_helpers import (
    block,
    call_row,
    exists,
    reports,
    run_greeting_call,
    unblock,
    upload_row,
    usage_count,
    wav_channels,
    wavs_under,
)
from tests.recordings.test_api_recording import path_of

__all__ = [
    "_drop_pg_schema",
    "api",
    "backend",
    "client",
    "fake_openai",
    "keyring",
    "make_org",
    "org",
    "services",
]

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        rate_limit_per_minute=100_000,
        allow_private_webhooks=True,
        initial_minutes_balance=100,
        recording_retry_scale=0.0,  # retries are due at once (the test drives them)
    )


async def test_disk_failure_ends_the_call_once_and_the_upload_is_retried(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "recordings"
    block(blocked)

    call_id = await run_greeting_call(services, org, api, fake_openai)

    call = await call_row(services, call_id)
    assert (call.status, call.ended_reason) == ("ended", "customer-ended-call")
    assert call.recording_status == "pending"
    assert call.recording_error
    assert await usage_count(services, call_id) == 1
    (report,) = await reports(services, call_id)
    assert report["recordingError"] == call.recording_error
    assert report["recordingUrl"] is None
    assert report["stereoRecordingUrl"] is None
    upload = await upload_row(services, call_id)
    assert upload is not None
    assert exists(upload.stereo_path)
    assert exists(upload.mono_path)
    detail = (await api.get(f"/calls/{call_id}")).json()
    assert detail["stereo_recording_url"] is None
    assert detail["recording_status"] == "pending"

    uploader = RecordingUploader(
        services.db, services.recordings, services.clock, node_id=services.settings.node_id
    )
    assert await uploader.run_once() == 1  # still broken
    again = await upload_row(services, call_id)
    assert again is not None
    assert again.attempts == upload.attempts + 1
    assert (await call_row(services, call_id)).recording_status == "pending"

    unblock(blocked)  # the disk is back
    assert await uploader.run_once() == 1
    assert await upload_row(services, call_id) is None
    call = await call_row(services, call_id)
    assert (call.recording_status, call.recording_error) == ("stored", None)
    assert not exists(upload.stereo_path)  # the spool copy is gone
    assert len(wavs_under(blocked)) == 2
    assert await uploader.run_once() == 0

    detail = (await api.get(f"/calls/{call_id}")).json()
    r = await api.get(path_of(detail["stereo_recording_url"]))
    assert r.status_code == 200
    channels, seconds = wav_channels(r.content)
    assert channels == 2
    assert seconds == pytest.approx(call.recording_duration_seconds, abs=0.02)
    # still one end, one report, one usage record
    assert len(await reports(services, call_id)) == 1
    assert await usage_count(services, call_id) == 1
