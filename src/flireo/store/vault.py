"""Secrets stored encrypted in the ``secrets`` table (the platform's vault)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.security.secrets import Keyring, mask
from flireo.store.tables import Secret


class Vault:
    """``reload`` re-reads the keyring (e.g. from ``data/secret.key``) when a secret
    names a key this process does not know yet: ``flireo secrets rotate`` can run
    next to a live server."""

    def __init__(self, keyring: Keyring, *, reload: Callable[[], Keyring] | None = None) -> None:
        self.keyring = keyring
        self._reload = reload

    async def put(
        self,
        session: AsyncSession,
        org_id: str,
        purpose: str,
        plaintext: str,
        *,
        replace_id: str | None = None,
    ) -> Secret:
        """Store ``plaintext``; with ``replace_id``, overwrite that secret in place."""
        blob = self.keyring.encrypt(org_id, plaintext)
        if replace_id is not None:
            row = await session.get(Secret, replace_id)
            if row is not None and row.org_id == org_id:
                row.ciphertext = blob
                row.masked = mask(plaintext)
                row.purpose = purpose
                return row
        row = Secret(org_id=org_id, purpose=purpose, ciphertext=blob, masked=mask(plaintext))
        session.add(row)
        await session.flush()
        return row

    async def reveal(self, session: AsyncSession, org_id: str, secret_id: str) -> str | None:
        row = await session.get(Secret, secret_id)
        if row is None or row.org_id != org_id:
            return None
        return self.decrypt(org_id, row.ciphertext)

    def decrypt(self, org_id: str, ciphertext: bytes) -> str:
        """``ciphertext`` of one of ``org_id``'s secrets, read by the caller (with
        other rows in one statement), as plain text."""
        if self._reload is not None and not self.keyring.knows(self.keyring.key_id_of(ciphertext)):
            self.keyring = self._reload()
        return self.keyring.decrypt(org_id, ciphertext)

    async def masked(self, session: AsyncSession, secret_id: str | None) -> str | None:
        if secret_id is None:
            return None
        row = await session.get(Secret, secret_id)
        return row.masked if row is not None else None

    async def delete(self, session: AsyncSession, org_id: str, secret_id: str) -> None:
        row = await session.get(Secret, secret_id)
        if row is not None and row.org_id == org_id:
            await session.delete(row)

    async def reencrypt_all(self, session: AsyncSession, new: Keyring) -> int:
        """Re-encrypt every secret with ``new``'s current key; returns how many."""
        rows = (await session.execute(select(Secret).with_for_update())).scalars().all()
        for row in rows:
            plaintext = self.keyring.decrypt(row.org_id, row.ciphertext)
            row.ciphertext = new.encrypt(row.org_id, plaintext)
        return len(rows)
