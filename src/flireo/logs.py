"""Logging: structlog over the standard library, console or JSON lines."""

from __future__ import annotations

import io
import logging
import sys
from typing import TextIO, cast

import structlog


class _CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured.

    structlog caches its logger on first use, and a logger built over the stream object of
    that moment keeps writing to it after it is gone: a CLI command run inside a test
    runner (click's ``CliRunner`` swaps ``sys.stderr`` for a buffer it closes afterwards)
    left every later log line of the process raising ``ValueError: I/O operation on closed
    file`` inside the SIP handler that logged it.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = cast(TextIO, _CurrentStderr())


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(_STDERR),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=level.upper(), stream=_STDERR, format="%(levelname)s %(name)s: %(message)s"
    )
