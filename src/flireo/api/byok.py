"""``/byok`` (resources.md §9): keys are stored encrypted; only vault references
and masked forms are ever returned. ``/byok/config`` describes the providers a
key can be stored for, their models, and where this organization's key for
each comes from."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.domain.byok import (
    ByokCreate,
    ByokDelete,
    ByokKeysResponse,
    ByokProvider,
    KeySource,
    ModelOption,
    ProviderConfig,
    ProviderConfigResponse,
)
from flireo.errors import InvalidRequest
from flireo.providers.catalog import BYOK_PROVIDER_INFO, ProviderInfo
from flireo.services import credentials
from flireo.services.container import Services

router = APIRouter(prefix="/byok", tags=["BYOK"], responses=error_responses(400, 401, 413, 429))


@router.get("", response_model=ByokKeysResponse, summary="Get BYOK configurations")
async def get_byok(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ByokKeysResponse:
    async with svc.db.read() as s:
        return await credentials.byok_state(s, who.org_id)


@router.post("", response_model=ByokKeysResponse, summary="Add or rotate a BYOK key")
async def add_byok(
    body: ByokCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ByokKeysResponse:
    async with svc.db.transaction() as s:
        await credentials.set_byok_key(s, svc.vault, who.org_id, body.provider, body.api_key)
        return await credentials.byok_state(s, who.org_id)


@router.delete(
    "",
    response_model=ByokKeysResponse,
    summary="Delete a BYOK key (the platform's own key is used again)",
)
async def delete_byok(
    body: ByokDelete | None = Body(None),
    provider: ByokProvider | None = Query(None, description="Alternative to the JSON body"),
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> ByokKeysResponse:
    chosen = body.provider if body else provider
    if chosen is None:
        raise InvalidRequest(
            "Missing required field: provider", param="provider", code="missing_field"
        )
    async with svc.db.transaction() as s:
        await credentials.delete_byok_key(s, svc.vault, who.org_id, chosen)
        return await credentials.byok_state(s, who.org_id)


@router.get(
    "/config",
    response_model=ProviderConfigResponse,
    summary="Get BYOK provider configurations (providers, their models, your keys' state)",
)
async def get_byok_config(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ProviderConfigResponse:
    async with svc.db.read() as s:
        sources = await credentials.key_sources(s, svc.settings, who.org_id)
    return ProviderConfigResponse(
        providers=[_provider_config(info, sources.get(info.id)) for info in BYOK_PROVIDER_INFO]
    )


def _provider_config(info: ProviderInfo, source: KeySource | None) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {
            "id": info.id,
            "name": info.name,
            "category": info.categories[0],
            "categories": list(info.categories),
            "docsUrl": info.docs_url,
            "configured": source == "byok",
            "key_source": source,
            "models": [
                ModelOption.model_validate(
                    {"id": m.id, "name": m.name, "default": m.default, "category": category}
                )
                for category, models in info.models
                for m in models
            ],
        }
    )
