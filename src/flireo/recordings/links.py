"""Signed recording links: absolute URLs that work without the API key.

``<public base>/api/v1/calls/<id>/recording?channels=<stereo|mono>&expires=<unix>&signature=<hmac>``
where the signature is HMAC-SHA256 over ``call id \\n channel \\n expires``,
keyed by a server secret: ``FLIREO_RECORDING_LINK_SECRET`` when set, else a key
derived from each master key of the secret keyring (``FLIREO_SECRET_KEY`` or
``data_dir/secret.key``, the key the vault uses), so every node of a cluster
signs and checks alike and a link survives a key rotation while the old key is
still in the keyring. Expiry is rounded up to the hour, so the URL of a call
stays the same for an hour (browsers can cache what they fetched).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlencode

from flireo.errors import FlireoError
from flireo.security.secrets import load_keyring
from flireo.settings import Settings

Channel = Literal["stereo", "mono"]
_ROUND_S = 3600
_CONTEXT = b"flireo recording links v1"


class LinkForbidden(FlireoError):
    """An expired or tampered signed link (403)."""

    status = 403
    code = "invalid_signature"
    type = "permission_error"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class RecordingLinks:
    base_url: str
    #: signing keys; the first signs, any of them verifies
    keys: tuple[bytes, ...]
    ttl_seconds: int

    def signature(self, call_id: str, channel: str, expires: int, key: bytes | None = None) -> str:
        message = f"{call_id}\n{channel}\n{expires}".encode()
        return _b64(hmac.new(key or self.keys[0], message, hashlib.sha256).digest())

    def expiry(self, now: datetime) -> int:
        return math.ceil((now.timestamp() + self.ttl_seconds) / _ROUND_S) * _ROUND_S

    def url(self, call_id: str, channel: Channel, now: datetime) -> str:
        expires = self.expiry(now)
        query = urlencode(
            {
                "channels": channel,
                "expires": expires,
                "signature": self.signature(call_id, channel, expires),
            }
        )
        return f"{self.base_url}/api/v1/calls/{quote(call_id, safe='')}/recording?{query}"

    def verify(
        self, call_id: str, channel: str, expires: str, signature: str, now: datetime
    ) -> None:
        """Raises :class:`LinkForbidden` unless the link was signed by us and is still valid."""
        try:
            expires_at = int(expires)
        except ValueError:
            raise LinkForbidden("The recording link is invalid", param="expires") from None
        valid = any(
            hmac.compare_digest(self.signature(call_id, channel, expires_at, key), signature)
            for key in self.keys
        )
        if not valid:
            raise LinkForbidden("The recording link's signature is invalid", param="signature")
        if expires_at <= now.timestamp():
            raise LinkForbidden(
                "The recording link has expired; fetch the call again for a fresh one",
                param="expires",
                code="link_expired",
            )


_cache: dict[tuple[object, ...], RecordingLinks] = {}
_cache_lock = threading.Lock()


def links_for(settings: Settings) -> RecordingLinks:
    """The links of this server (cached per configuration)."""
    marker = (
        settings.recording_link_secret,
        settings.secret_key,
        str(settings.data_dir.resolve()),
        settings.resolved_public_base_url,
        settings.recording_link_ttl_seconds,
    )
    links = _cache.get(marker)
    if links is not None:
        return links
    with _cache_lock:
        if settings.recording_link_secret:
            keys: tuple[bytes, ...] = (settings.recording_link_secret.encode(),)
        else:
            keyring = load_keyring(settings.secret_key, settings.data_dir, create=True)
            keys = tuple(hmac.new(k.key, _CONTEXT, hashlib.sha256).digest() for k in keyring.keys)
        links = RecordingLinks(
            base_url=settings.resolved_public_base_url,
            keys=keys,
            ttl_seconds=settings.recording_link_ttl_seconds,
        )
        _cache[marker] = links
    return links
