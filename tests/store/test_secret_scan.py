"""The suite-wide check for plaintext secrets (tests/conftest.py) finds a leak."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import _plaintext_secrets_in


def test_a_plaintext_secret_in_a_database_or_log_file_is_found(tmp_path: Path) -> None:
    secret = "sk-live-0123456789abcdef"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "flireo.db-wal").write_bytes(b"\x00page" + secret.encode() + b"\x00")
    (tmp_path / "server.log").write_text("connected with sk-othe...masked\n")
    (tmp_path / "caller.wav").write_bytes(secret.encode())  # recordings are not scanned
    found = _plaintext_secrets_in(tmp_path, {secret, "another-secret-value"})
    assert found == ["data/flireo.db-wal: sk-l…"]
    assert _plaintext_secrets_in(tmp_path, {"never-stored-value"}) == []
