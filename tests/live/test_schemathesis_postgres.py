"""Schemathesis against a live server on PostgreSQL (the SQLite run and the helpers are in
tests/live/test_schemathesis.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.test_schemathesis import check_backend


@pytest.mark.timeout(900)  # minutes on a busy machine; the run itself is bounded at 900 s
def test_schemathesis_finds_nothing_on_postgres(tmp_path: Path) -> None:
    check_backend("postgres", tmp_path)
