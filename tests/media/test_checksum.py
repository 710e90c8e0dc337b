"""Model files are checked against recorded SHA-256 hashes before loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flireo.media.checksum import ChecksumMismatch, file_sha256, verify_sha256
from flireo.media.silero import SILERO_SHA256, silero_model_path


def test_the_installed_silero_model_is_the_pinned_one() -> None:
    assert file_sha256(silero_model_path()) == SILERO_SHA256


def test_a_changed_file_is_refused_with_both_hashes(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    verify_sha256(model, good)
    model.write_bytes(b"tampered weights")
    with pytest.raises(ChecksumMismatch) as caught:
        verify_sha256(model, good)
    assert caught.value.expected == good
    assert caught.value.actual == hashlib.sha256(b"tampered weights").hexdigest()
    assert str(model) in str(caught.value)
