"""The two storage back-ends keep the same contract: a local directory, and S3 over
its wire protocol (moto's standalone server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flireo.recordings.storage import (
    LocalStorage,
    RecordingMissing,
    RecordingStorage,
    S3Storage,
    StorageError,
    recording_keys,
    storage_from_settings,
)
from flireo.settings import Settings
from tests.recordings.fixtures import MotoServer, free_port, moto_server

__all__ = ["moto_server"]

BLOB = bytes(range(256)) * 1200  # 307200 bytes: more than one read chunk


@pytest.fixture(params=["local", "s3"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, moto_server: MotoServer
) -> AsyncIterator[RecordingStorage]:
    if request.param == "local":
        store: RecordingStorage = LocalStorage(tmp_path / "recordings")
    else:
        store = moto_server.storage(moto_server.bucket())
    yield store
    await store.close()


async def read_all(storage: RecordingStorage, key: str, start: int, end: int) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


def test_keys_are_org_year_month_call() -> None:
    when = datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert recording_keys("org-1", "call-x", when, "wav") == (
        "org-1/2026/03/call-x.wav",
        "org-1/2026/03/call-x.mono.wav",
    )


async def test_put_size_ranged_read_and_delete(storage: RecordingStorage, tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    source.write_bytes(BLOB)
    key = "org-1/2026/12/call-a.wav"
    await storage.put(key, source, "audio/wav")
    assert await storage.size(key) == len(BLOB)
    assert await read_all(storage, key, 0, len(BLOB)) == BLOB
    assert await read_all(storage, key, 1000, 1010) == BLOB[1000:1010]
    assert await read_all(storage, key, len(BLOB) - 7, len(BLOB)) == BLOB[-7:]
    await storage.delete(key)
    with pytest.raises(RecordingMissing):
        await storage.size(key)
    await storage.delete(key)  # already gone: no error


async def test_missing_object_is_recording_missing(storage: RecordingStorage) -> None:
    with pytest.raises(RecordingMissing):
        await storage.size("org-1/2026/12/nothing.wav")
    with pytest.raises(RecordingMissing):
        await read_all(storage, "org-1/2026/12/nothing.wav", 0, 10)


async def test_local_layout_is_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    storage = storage_from_settings(settings)
    assert isinstance(storage, LocalStorage)
    source = tmp_path / "x.wav"
    source.write_bytes(b"RIFF....")
    await storage.put("org-1/2026/12/call-b.wav", source, "audio/wav")
    assert (tmp_path / "recordings/org-1/2026/12/call-b.wav").read_bytes() == b"RIFF...."
    await storage.delete("org-1/2026/12/call-b.wav")
    assert not (tmp_path / "recordings/org-1").exists()  # emptied directories go too


async def test_local_key_cannot_leave_the_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "recordings")
    with pytest.raises(StorageError):
        await storage.size("../secret.key")


async def test_local_disk_failure_is_a_storage_error(tmp_path: Path) -> None:
    blocked = tmp_path / "recordings"
    blocked.write_text("a file where the directory should be")
    source = tmp_path / "x.wav"
    source.write_bytes(BLOB)
    with pytest.raises(StorageError):
        await LocalStorage(blocked).put("org-1/2026/12/c.wav", source, "audio/wav")


async def test_s3_objects_are_under_the_prefix(moto_server: MotoServer, tmp_path: Path) -> None:
    bucket = moto_server.bucket()
    settings = Settings(
        data_dir=tmp_path,
        recordings_url=f"s3://{bucket}/flireo/rec",
        recordings_s3_endpoint=moto_server.endpoint,
        recordings_s3_access_key_id="a",
        recordings_s3_secret_access_key="b",
    )
    storage = storage_from_settings(settings)
    assert isinstance(storage, S3Storage)
    source = tmp_path / "x.ogg"
    source.write_bytes(BLOB)
    await storage.put("org-1/2026/12/call-c.ogg", source, "audio/ogg")
    assert moto_server.keys(bucket) == ["flireo/rec/org-1/2026/12/call-c.ogg"]


async def test_s3_down_is_a_storage_error(tmp_path: Path) -> None:
    down = S3Storage(
        "bucket",
        endpoint=f"http://127.0.0.1:{free_port()}",
        access_key_id="a",
        secret_access_key="b",
    )
    source = tmp_path / "x.wav"
    source.write_bytes(BLOB)
    with pytest.raises(StorageError) as caught:
        await down.put("org-1/2026/12/c.wav", source, "audio/wav")
    assert not isinstance(caught.value, RecordingMissing)


def test_unknown_storage_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported scheme"):
        storage_from_settings(Settings(data_dir=tmp_path, recordings_url="ftp://x/y"))
    with pytest.raises(ValueError, match="bucket"):
        storage_from_settings(Settings(data_dir=tmp_path, recordings_url="s3:///prefix"))
