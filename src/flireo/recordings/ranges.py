"""HTTP ``Range`` requests on a recording (RFC 9110 §14): one byte range.

``bytes=a-b``, ``bytes=a-`` (from ``a`` to the end) and ``bytes=-n`` (the last
``n`` bytes) are served as 206; an end past the file is clamped. Anything else
— another unit, several ranges, a malformed spec, a start at or past the end,
an empty suffix — is 416 with ``Content-Range: bytes */<size>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flireo.errors import FlireoError

_SPEC = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(FlireoError):
    status = 416
    code = "range_not_satisfiable"
    type = "invalid_request_error"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, param="Range")
        self.size = size


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    #: exclusive
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range asked for, or None for the whole file (no ``Range`` header)."""
    if header is None:
        return None
    spec = header.strip().replace(" ", "")
    match = _SPEC.match(spec)
    if match is None or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(
            f"Unsupported Range {header[:100]!r}: use one 'bytes=start-end' range", size=size
        )
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable("An empty suffix range selects no bytes", size=size)
        return ByteRange(max(0, size - n), size)
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(
            f"Range starts at byte {start}, the recording has {size} bytes", size=size
        )
    if not last:
        return ByteRange(start, size)
    end = int(last)
    if end < start:
        raise RangeNotSatisfiable(f"Range end {end} is before its start {start}", size=size)
    return ByteRange(start, min(end + 1, size))
