"""Shared test fixtures. Area-specific fixtures live in each test package's conftest."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_services() -> bool:
    """Under CI (FLIREO_REQUIRE_SERVICES=1) a missing service fails instead of skipping."""
    return os.environ.get("FLIREO_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    if require_services():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fresh_phrase_cache() -> None:
    """Each test starts with no fixed phrases synthesized (the cache is process-wide)."""
    from flireo.engine.phrases import PHRASES

    PHRASES.clear()


#: every plaintext this test process put through the vault's encryption
_STORED_SECRETS: set[str] = set()
#: files that hold stored data or logs (recordings, pcaps and scenarios are not scanned)
_SCANNED_SUFFIXES = (".db", ".db-wal", ".db-journal", ".sqlite", ".log")


@pytest.fixture(scope="session", autouse=True)
def _no_stored_secret_in_plaintext(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """After the whole suite: no secret a test stored (BYOK keys, trunk passwords,
    webhook secrets...) is in plaintext in any test database file or log.

    Encryption is observed, not replaced: every call goes through to the real
    keyring. The standard library's log records of the suite go to a file that
    is scanned too.
    """
    import logging

    from flireo.security.secrets import Keyring

    original = Keyring.encrypt

    def observed(self: Keyring, org_id: str, plaintext: str) -> bytes:
        if len(plaintext) >= 8:  # shorter ones would match by chance
            _STORED_SECRETS.add(plaintext)
        return original(self, org_id, plaintext)

    base = tmp_path_factory.getbasetemp()
    handler = logging.FileHandler(base / "suite.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    Keyring.encrypt = observed  # type: ignore[method-assign]
    try:
        yield
    finally:
        Keyring.encrypt = original  # type: ignore[method-assign]
        root.removeHandler(handler)
        handler.close()
    found = _plaintext_secrets_in(base, _STORED_SECRETS)
    assert not found, f"plaintext secrets in test files: {found[:10]}"


def _plaintext_secrets_in(base: Path, secrets: set[str]) -> list[str]:
    import re

    if not secrets:
        return []
    pattern = re.compile(b"|".join(re.escape(s.encode()) for s in sorted(secrets, key=len)[::-1]))
    found: list[str] = []
    for path in base.rglob("*"):
        if not path.is_file() or not path.name.endswith(_SCANNED_SUFFIXES):
            continue
        try:
            blob = path.read_bytes()
        except OSError:
            continue
        for match in pattern.finditer(blob):
            found.append(f"{path.relative_to(base)}: {match.group().decode()[:4]}…")
    return found
