"""Webhook signatures: the documented Flireo scheme and Standard Webhooks.

Flireo:  ``X-Webhook-Signature = hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))``
Standard Webhooks:
``webhook-signature = "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))``
where ``key`` is the secret's bytes (base64-decoded when the secret has the
``whsec_`` prefix, as the standard defines).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from flireo import __version__

#: every request we make to a customer's server (webhooks, tool calls,
#: assistant-request) and, as the shared client's default, to vendors
USER_AGENT = f"Flireo/{__version__}"
DEFAULT_TOLERANCE_SECONDS = 300
#: the ``webhook_secret`` value that asks the server for a new Standard Webhooks secret
GENERATE_SECRET = "generate"
#: Standard Webhooks: secrets SHOULD be 24 to 64 bytes (before base64)
_STANDARD_KEY_BYTES = (24, 64)


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64 (what Svix and
    ``standardwebhooks`` generate and accept)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret_problem(secret: str) -> str | None:
    """Why a ``whsec_`` secret would break Standard Webhooks receivers, or None.
    Secrets without the prefix are used as they are (any text)."""
    if not secret.startswith("whsec_"):
        return None
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except binascii.Error:
        return (
            "a whsec_ secret must be base64 after the prefix (Standard Webhooks); "
            f'send "{GENERATE_SECRET}" to have one generated, or use a secret without the prefix'
        )
    low, high = _STANDARD_KEY_BYTES
    if not low <= len(key) <= high:
        return f"a whsec_ secret must decode to {low}-{high} bytes (found {len(key)})"
    return None


def flireo_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def standard_key(secret: str) -> bytes:
    """The HMAC key Standard Webhooks derives from a secret."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def standard_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    *, event: str, webhook_id: str, timestamp: int, body: bytes, secret: str | None
) -> dict[str, str]:
    """All headers of one delivery. Signatures only when the agent has a secret."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Event": event,
        "X-Webhook-Timestamp": str(timestamp),
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["X-Webhook-Signature"] = flireo_signature(secret, timestamp, body)
        headers["webhook-signature"] = standard_signature(secret, webhook_id, timestamp, body)
    return headers


def verify_flireo_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Receiver-side check of the documented scheme (constant time, replay window)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = flireo_signature(secret, ts, body)
    return hmac.compare_digest(expected, signature)
