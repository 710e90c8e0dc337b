"""Where finished recordings live: one small interface, two back-ends.

* :class:`LocalStorage` — a directory on this node (default
  ``FLIREO_DATA_DIR/recordings``), keys are relative paths.
* :class:`S3Storage` — an S3-compatible bucket (``FLIREO_RECORDINGS_URL=s3://bucket/prefix``),
  through obstore (the Rust ``object_store`` crate: native asyncio, streaming
  multipart uploads and ranged GETs, no botocore/aiohttp stack). For clusters
  where the node that took the call is not the node that serves the API.

A key is ``<org>/<yyyy>/<mm>/<call-id>.<ext>`` for the stereo file and
``<org>/<yyyy>/<mm>/<call-id>.mono.<ext>`` for the mono mix (:func:`recording_keys`).
Every file operation of size runs in a small bounded thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar
from urllib.parse import urlparse

from flireo.settings import Settings

T = TypeVar("T")

#: bytes per chunk when streaming a recording to a client
CHUNK = 64 * 1024
_IO_WORKERS = 4

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _io_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=_IO_WORKERS, thread_name_prefix="flireo-rec-io"
                )
    return _executor


async def run_io(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the recordings' I/O pool (file copies, reads, deletes)."""
    return await asyncio.get_running_loop().run_in_executor(_io_executor(), fn, *args)


def _read(handle: BinaryIO, n: int) -> bytes:
    return handle.read(n)


class StorageError(Exception):
    """Storing, reading or deleting a recording failed (disk full, S3 down...)."""


class RecordingMissing(StorageError):
    """No object under that key."""


def recording_keys(org_id: str, call_id: str, when: datetime, fmt: str) -> tuple[str, str]:
    """(stereo key, mono key) of a call's recording made at ``when``."""
    base = f"{org_id}/{when:%Y}/{when:%m}/{call_id}"
    return f"{base}.{fmt}", f"{base}.mono.{fmt}"


class RecordingStorage(Protocol):
    #: "local" | "s3" (for logs and the docs)
    kind: str

    async def put(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at ``path`` under ``key`` (complete or not at all)."""
        ...

    async def size(self, key: str) -> int:
        """The object's length in bytes; :class:`RecordingMissing` when absent."""
        ...

    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` .. ``end`` (exclusive) of the object, in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""
        ...

    async def close(self) -> None: ...


# --- local directory ----------------------------------------------------------------


class LocalStorage:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        root = self.root.resolve()
        if root not in path.parents:
            raise StorageError(f"key {key!r} leaves the recordings directory")
        return path

    def _put(self, key: str, source: Path) -> None:
        target = self._path(key)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with source.open("rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(f"local storage: {exc}") from exc

    async def put(self, key: str, path: Path, content_type: str) -> None:
        await run_io(self._put, key, path)

    def _size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise RecordingMissing(key) from exc
        except OSError as exc:
            raise StorageError(f"local storage: {exc}") from exc

    async def size(self, key: str) -> int:
        return await run_io(self._size, key)

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            handle = await run_io(self._path(key).open, "rb")
        except FileNotFoundError as exc:
            raise RecordingMissing(key) from exc
        except OSError as exc:
            raise StorageError(f"local storage: {exc}") from exc
        try:
            await run_io(handle.seek, start)
            left = end - start
            while left > 0:
                chunk = await run_io(_read, handle, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            await run_io(handle.close)

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"local storage: {exc}") from exc
        # drop emptied <org>/<yyyy>/<mm> directories (best effort)
        for parent in list(path.parents)[:3]:
            if parent == self.root.resolve():
                break
            try:
                parent.rmdir()
            except OSError:
                break

    async def delete(self, key: str) -> None:
        await run_io(self._delete, key)

    async def close(self) -> None:
        return None


# --- S3-compatible object storage -----------------------------------------------------


class S3Storage:
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        from obstore.store import S3Store

        config: dict[str, Any] = {"region": region}
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = False
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        client: dict[str, Any] = {"connect_timeout": "5s", "timeout": "120s"}
        if endpoint and endpoint.startswith("http://"):
            client["allow_http"] = True
        retry: dict[str, Any] = {"max_retries": 2, "retry_timeout": timedelta(seconds=10)}
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._store = S3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options=client,  # type: ignore[arg-type]
            retry_config=retry,  # type: ignore[arg-type]
        )

    @staticmethod
    def _error(exc: Exception) -> StorageError:
        from obstore.exceptions import NotFoundError

        if isinstance(exc, NotFoundError | FileNotFoundError):
            return RecordingMissing(str(exc).splitlines()[0] if str(exc) else "not found")
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StorageError(f"s3 storage: {first[:300]}")

    async def put(self, key: str, path: Path, content_type: str) -> None:
        import obstore

        try:
            # streamed from the file in 5 MB parts (multipart above that): bounded memory
            await obstore.put_async(
                self._store, key, path, attributes={"Content-Type": content_type}
            )
        except Exception as exc:
            raise self._error(exc) from exc

    async def size(self, key: str) -> int:
        import obstore

        try:
            meta = await obstore.head_async(self._store, key)
        except Exception as exc:
            raise self._error(exc) from exc
        return int(meta["size"])

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        import obstore

        if end <= start:
            return
        try:
            result = await obstore.get_async(self._store, key, options={"range": (start, end)})
            async for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)
        except Exception as exc:
            raise self._error(exc) from exc

    async def delete(self, key: str) -> None:
        import obstore

        try:
            await obstore.delete_async(self._store, key)
        except Exception as exc:
            error = self._error(exc)
            if not isinstance(error, RecordingMissing):
                raise error from exc

    async def close(self) -> None:
        return None


def storage_from_settings(settings: Settings) -> RecordingStorage:
    """The back-end ``FLIREO_RECORDINGS_URL`` names (default: ``data_dir/recordings``)."""
    url = settings.recordings_url
    if not url:
        return LocalStorage(settings.data_dir / "recordings")
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError("FLIREO_RECORDINGS_URL: s3://bucket[/prefix] needs a bucket")
        return S3Storage(
            parsed.netloc,
            prefix=parsed.path,
            endpoint=settings.recordings_s3_endpoint,
            region=settings.recordings_s3_region,
            access_key_id=settings.recordings_s3_access_key_id,
            secret_access_key=settings.recordings_s3_secret_access_key,
        )
    raise ValueError(f"FLIREO_RECORDINGS_URL: unsupported scheme {parsed.scheme!r} (file, s3)")
