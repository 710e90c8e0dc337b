"""The one error the SIP parser raises: anything else escaping ``parse`` is a bug."""

from __future__ import annotations


class SipParseError(ValueError):
    """Bytes that are not a valid SIP message (or header).

    ``status`` is the response a server should send when it can answer at all
    (400 Bad Request, or 505 Version Not Supported).
    """

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
