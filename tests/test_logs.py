"""Logging keeps working after the stream it was configured under is gone."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest
import structlog

from flireo.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    config = structlog.get_config()
    yield
    structlog.configure(**config)


def test_a_log_line_after_the_configuring_stderr_was_closed_goes_to_the_current_one(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    swapped, real = io.StringIO(), sys.stderr
    sys.stderr = swapped  # what click's CliRunner does around a command
    try:
        configure_logging("info")
        structlog.get_logger("t").info("inside.command")
    finally:
        sys.stderr = real
        swapped.close()
    structlog.get_logger("t").warning("after.command", n=1)  # raised ValueError before
    assert "after.command" in capsys.readouterr().err
