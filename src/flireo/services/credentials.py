"""Vendor API keys: the organization's BYOK key, else the platform's own.

A self-hosted OpenAI-compatible LLM server (``ollama``, ``openai-compatible``)
is one the agent names with ``llm_config.base_url``: it gets the
organization's own BYOK key for that provider (a vLLM or llama.cpp server
started with ``--api-key``, an Ollama behind an authenticating proxy), never
a platform key, which must not go to an address an agent chose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.byok import BYOK_PROVIDERS, ByokKeyInfo, ByokKeysResponse, KeySource
from flireo.settings import Settings
from flireo.store.tables import ByokKey, Secret
from flireo.store.vault import Vault

#: which key a pipeline provider name uses
KEY_FOR_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "groq": "groq",
    "xai": "xai",
    "xai_realtime": "xai",
    "mistral": "mistral",
    "deepgram": "deepgram",
    "elevenlabs": "elevenlabs",
    "cartesia": "cartesia",
    "resend": "resend",
    "ollama": "ollama",
    "openai-compatible": "openai-compatible",
}
#: keys only an organization stores: the platform has none to lend
BYOK_ONLY = frozenset({"ollama", "openai-compatible"})
#: the BYOK providers the platform may also hold a key for (``FLIREO_<NAME>_API_KEY``)
PLATFORM_KEY_PROVIDERS = tuple(p for p in BYOK_PROVIDERS if p not in BYOK_ONLY)


def platform_key(settings: Settings, key_name: str) -> str | None:
    if key_name in BYOK_ONLY:
        return None
    value = getattr(settings, f"{key_name}_api_key", None)
    return value if isinstance(value, str) and value else None


async def resolve_key(
    session: AsyncSession, vault: Vault, settings: Settings, org_id: str, provider: str
) -> str | None:
    """The API key ``provider`` should use for ``org_id`` (None: nothing configured)."""
    key_name = KEY_FOR_PROVIDER.get(provider)
    if key_name is None:
        return None
    row = await session.get(ByokKey, (org_id, key_name))
    if row is not None:
        value = await vault.reveal(session, org_id, row.secret_id)
        if value:
            return value
    return platform_key(settings, key_name)


#: :func:`resolve_keys`' label for the webhook signing secret among the keys
WEBHOOK_SECRET = "webhook secret"


_KEY_STATEMENTS: dict[tuple[bool, bool], Any] = {}


def _keys_statement(keys: bool, secret: bool) -> Any:
    """(label, secret's org, ciphertext) rows: the org's BYOK keys named ``:wanted``
    and/or the secret ``:secret``; built once per shape."""
    if not keys and not secret:
        return None
    statement = _KEY_STATEMENTS.get((keys, secret))
    if statement is None:
        parts = []
        if keys:
            parts.append(
                select(ByokKey.provider.label("label"), Secret.org_id, Secret.ciphertext)
                .join(Secret, Secret.id == ByokKey.secret_id)
                .where(
                    ByokKey.org_id == bindparam("org"),
                    ByokKey.provider.in_(bindparam("wanted", expanding=True)),
                )
            )
        if secret:
            parts.append(
                select(
                    literal(WEBHOOK_SECRET).label("label"), Secret.org_id, Secret.ciphertext
                ).where(Secret.id == bindparam("secret"))
            )
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        _KEY_STATEMENTS[(keys, secret)] = statement
    return statement


async def resolve_keys(
    session: AsyncSession,
    vault: Vault,
    settings: Settings,
    org_id: str,
    providers: Mapping[str, str],
    *,
    webhook_secret_id: str | None = None,
) -> tuple[dict[str, str | None], str | None]:
    """:func:`resolve_key` for each ``name → provider`` of ``providers``, and the
    webhook signing secret ``webhook_secret_id`` (if any), in one statement."""
    names = {name: KEY_FOR_PROVIDER.get(provider) for name, provider in providers.items()}
    wanted = sorted({k for k in names.values() if k is not None})
    statement = _keys_statement(bool(wanted), webhook_secret_id is not None)
    found: dict[str, str] = {}
    if statement is not None:
        params = {"org": org_id, "wanted": wanted, "secret": webhook_secret_id}
        for label, owner, ciphertext in (await session.execute(statement, params)).all():
            if owner == org_id:
                found[label] = vault.decrypt(org_id, ciphertext)
    keys = {
        name: (found.get(key) or platform_key(settings, key)) if key is not None else None
        for name, key in names.items()
    }
    return keys, found.get(WEBHOOK_SECRET)


@dataclass(frozen=True)
class Credentials:
    """What :func:`resolve_keys` found for a call's pipeline, and for which providers
    (a set-up that read them once hands them on instead of reading them again)."""

    providers: dict[str, str]
    keys: dict[str, str | None]
    webhook_secret: str | None

    def fits(self, providers: Mapping[str, str], webhook_secret_id: str | None) -> bool:
        return self.providers == dict(providers) and self.secret_id == webhook_secret_id

    secret_id: str | None = None


def pipeline_providers(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``stt_config`` → its ``provider``... (what :func:`resolve_keys` takes)."""
    return {name: str(cfg.get("provider") or "") for name, cfg in configs.items()}


async def credentials_for(
    session: AsyncSession,
    vault: Vault,
    settings: Settings,
    org_id: str,
    configs: Mapping[str, Mapping[str, Any]],
    webhook_secret_id: str | None,
) -> Credentials:
    providers = pipeline_providers(configs)
    keys, secret = await resolve_keys(
        session, vault, settings, org_id, providers, webhook_secret_id=webhook_secret_id
    )
    return Credentials(providers, keys, secret, webhook_secret_id)


async def key_sources(
    session: AsyncSession, settings: Settings, org_id: str
) -> dict[str, KeySource | None]:
    """For every BYOK provider, where ``org_id``'s key comes from: its own BYOK
    entry, the platform's settings, or nowhere (None). Nothing is decrypted."""
    stored = set(
        (await session.execute(select(ByokKey.provider).where(ByokKey.org_id == org_id))).scalars()
    )
    sources: dict[str, KeySource | None] = {}
    for provider in BYOK_PROVIDERS:
        if provider in stored:
            sources[provider] = "byok"
        elif platform_key(settings, provider):
            sources[provider] = "platform"
        else:
            sources[provider] = None
    return sources


async def byok_state(session: AsyncSession, org_id: str) -> ByokKeysResponse:
    rows = (
        await session.execute(
            select(ByokKey, Secret)
            .join(Secret, Secret.id == ByokKey.secret_id)
            .where(ByokKey.org_id == org_id)
            .order_by(ByokKey.provider)
        )
    ).all()
    refs: dict[str, str | None] = {f"{p}_secret_id": None for p in BYOK_PROVIDERS}
    keys = []
    for key, secret in rows:
        refs[f"{key.provider}_secret_id"] = key.secret_id
        keys.append(
            ByokKeyInfo(
                provider=key.provider,
                secret_id=key.secret_id,
                masked_key=secret.masked,
                updated_at=secret.updated_at,
            )
        )
    return ByokKeysResponse(byok_keys=refs, keys=keys)


async def set_byok_key(
    session: AsyncSession, vault: Vault, org_id: str, provider: str, api_key: str
) -> None:
    """Add a key, or rotate the existing one in place (same vault reference)."""
    row = await session.get(ByokKey, (org_id, provider))
    secret = await vault.put(
        session, org_id, f"byok:{provider}", api_key, replace_id=row.secret_id if row else None
    )
    if row is None:
        session.add(ByokKey(org_id=org_id, provider=provider, secret_id=secret.id))
    else:
        row.secret_id = secret.id
    await session.flush()


async def delete_byok_key(session: AsyncSession, vault: Vault, org_id: str, provider: str) -> None:
    row = await session.get(ByokKey, (org_id, provider))
    if row is None:
        return
    secret_id = row.secret_id
    await session.delete(row)
    await session.flush()
    await vault.delete(session, org_id, secret_id)
