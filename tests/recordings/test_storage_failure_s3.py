"""S3 is down while a recorded call ends (moto's server stopped): the call ends once,
the report says ``recordingError``; S3 comes back and the queued upload goes in."""

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
    call_row,
    reports,
    run_greeting_call,
    upload_row,
    usage_count,
    wav_channels,
)
from tests.recordings.fixtures import ACCESS_KEY, SECRET_KEY, MotoServer, own_moto_server
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
    "own_moto_server",
    "services",
]

pytestmark = pytest.mark.slow
BUCKET = "flireo-recordings"


@pytest.fixture
def settings(tmp_path: Path, own_moto_server: MotoServer) -> Settings:
    return Settings(
        data_dir=tmp_path,
        rate_limit_per_minute=100_000,
        allow_private_webhooks=True,
        initial_minutes_balance=100,
        recording_retry_scale=0.0,
        recordings_url=f"s3://{BUCKET}/calls",
        recordings_s3_endpoint=own_moto_server.endpoint,
        recordings_s3_access_key_id=ACCESS_KEY,
        recordings_s3_secret_access_key=SECRET_KEY,
    )


async def test_s3_down_ends_the_call_once_and_the_upload_is_retried(
    services: Services,
    org: Org,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    own_moto_server: MotoServer,
) -> None:
    own_moto_server.stop()  # S3 is down for the whole call

    call_id = await run_greeting_call(services, org, api, fake_openai)

    call = await call_row(services, call_id)
    assert (call.status, call.recording_status) == ("ended", "pending")
    assert call.recording_error
    assert "s3" in call.recording_error
    (report,) = await reports(services, call_id)
    assert report["recordingError"] == call.recording_error
    assert report["stereoRecordingUrl"] is None
    assert await usage_count(services, call_id) == 1

    own_moto_server.start()  # back, empty: the bucket is made again
    own_moto_server.bucket(BUCKET)
    uploader = RecordingUploader(
        services.db, services.recordings, services.clock, node_id=services.settings.node_id
    )
    assert await uploader.run_once() == 1
    assert await upload_row(services, call_id) is None
    call = await call_row(services, call_id)
    assert call.recording_status == "stored"
    keys = own_moto_server.keys(BUCKET)
    assert keys == sorted([f"calls/{call.recording_key}", f"calls/{call.recording_mono_key}"])

    detail = (await api.get(f"/calls/{call_id}")).json()
    r2 = await api.get(path_of(detail["stereo_recording_url"]), headers={"Range": "bytes=0-"})
    assert r2.status_code == 206
    assert wav_channels(r2.content)[0] == 2
    assert len(await reports(services, call_id)) == 1
