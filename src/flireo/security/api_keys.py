"""API keys: ``flk_`` + 40 random base62 characters; only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import string

PREFIX = "flk_"
_ALPHABET = string.ascii_letters + string.digits
_BODY_LEN = 40
DISPLAY_LEN = len(PREFIX) + 8


def generate_api_key() -> str:
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_LEN))


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_LEN]


def looks_like_api_key(key: str) -> bool:
    return (
        key.startswith(PREFIX)
        and len(key) == len(PREFIX) + _BODY_LEN
        and all(c in _ALPHABET for c in key[len(PREFIX) :])
    )
