"""Fresh identifiers: tags, branches (with the RFC 3261 magic cookie), Call-IDs."""

from __future__ import annotations

import secrets

MAGIC_COOKIE = "z9hG4bK"


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(10)


def new_call_id() -> str:
    return secrets.token_hex(16)
