"""Secrets at rest: AES-256-GCM with the organization id as associated data.

A ciphertext records which master key encrypted it (``kid``), so keys can be
rotated: the keyring decrypts with any key it holds and always encrypts with
the first (current) one. ``flireo secrets rotate`` re-encrypts every stored
secret with a new current key.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flireo.store.files import private_dir

_NONCE = 12
_VERSION = b"\x01"


class SecretError(Exception):
    """A secret could not be decrypted (wrong key, tampering, wrong organization)."""


@dataclass(frozen=True)
class MasterKey:
    kid: str
    key: bytes


def new_master_key() -> MasterKey:
    return MasterKey(kid=secrets.token_hex(4), key=AESGCM.generate_key(bit_length=256))


def format_keyring(keys: list[MasterKey]) -> str:
    return ",".join(f"{k.kid}:{base64.b64encode(k.key).decode()}" for k in keys)


def parse_keyring(text: str) -> list[MasterKey]:
    """``kid:base64[,kid:base64...]`` or a single bare base64 key (kid ``k0``)."""
    keys: list[MasterKey] = []
    for i, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        kid, sep, b64 = part.partition(":")
        if not sep:
            kid, b64 = f"k{i}", part
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"secret key {kid!r} is not valid base64") from exc
        if len(raw) != 32:
            raise ValueError(f"secret key {kid!r} must be 32 bytes (AES-256), got {len(raw)}")
        keys.append(MasterKey(kid=kid, key=raw))
    if not keys:
        raise ValueError("empty secret keyring")
    if len({k.kid for k in keys}) != len(keys):
        raise ValueError("duplicate key ids in secret keyring")
    return keys


class Keyring:
    def __init__(self, keys: list[MasterKey]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self.keys = list(keys)
        self._by_kid = {k.kid: AESGCM(k.key) for k in keys}

    @property
    def current(self) -> MasterKey:
        return self.keys[0]

    def encrypt(self, org_id: str, plaintext: str) -> bytes:
        kid = self.current.kid.encode()
        nonce = os.urandom(_NONCE)
        ct = self._by_kid[self.current.kid].encrypt(nonce, plaintext.encode(), org_id.encode())
        return _VERSION + bytes([len(kid)]) + kid + nonce + ct

    def knows(self, kid: str) -> bool:
        return kid in self._by_kid

    def key_id_of(self, blob: bytes) -> str:
        if len(blob) < 2 or blob[:1] != _VERSION:
            raise SecretError("unknown secret format")
        n = blob[1]
        return blob[2 : 2 + n].decode()

    def decrypt(self, org_id: str, blob: bytes) -> str:
        kid = self.key_id_of(blob)
        aead = self._by_kid.get(kid)
        if aead is None:
            raise SecretError(f"secret was encrypted with unknown key {kid!r}")
        body = blob[2 + len(kid.encode()) :]
        nonce, ct = body[:_NONCE], body[_NONCE:]
        try:
            return aead.decrypt(nonce, ct, org_id.encode()).decode()
        except InvalidTag as exc:
            raise SecretError("secret failed authentication") from exc


def key_file(data_dir: Path) -> Path:
    return data_dir / "secret.key"


def load_keyring(secret_key: str | None, data_dir: Path, *, create: bool) -> Keyring:
    """From ``FLIREO_SECRET_KEY`` if set, else from ``data_dir/secret.key``
    (generated with mode 0600 when ``create`` and missing)."""
    if secret_key:
        return Keyring(parse_keyring(secret_key))
    path = key_file(data_dir)
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no FLIREO_SECRET_KEY and no key file at {path}")
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(format_keyring([new_master_key()]) + "\n")
    return Keyring(parse_keyring(path.read_text()))


def mask(value: str) -> str:
    """Display form of a secret: ``sk-...wxyz`` for long keys, ``...wxyz`` for
    medium ones, fully hidden when short (never more than 7 characters shown)."""
    if len(value) >= 20:
        return f"{value[:3]}...{value[-4:]}"
    if len(value) >= 12:
        return f"...{value[-4:]}"
    return "********"
