"""Shared test fixtures. Area-specific fixtures live in each test package's conftest."""

from __future__ import annotations

import os

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
