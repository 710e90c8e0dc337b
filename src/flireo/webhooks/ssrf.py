"""The older home of the URL checks: re-exports :mod:`flireo.security.egress`,
the one egress policy every caller uses."""

from __future__ import annotations

from flireo.security.egress import UnsafeUrl, check_url, parse_target

__all__ = ["UnsafeUrl", "check_url", "parse_target"]
