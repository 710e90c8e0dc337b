"""``/analysis-templates`` (resources.md §11). Wrappers are camelCase
(``analysisTemplate``/``analysisTemplates``) as on the Flireo API pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.domain.templates import (
    AnalysisTemplateCreate,
    AnalysisTemplateOut,
    AnalysisTemplateUpdate,
)
from flireo.services.container import Services
from flireo.store.crud import flush_unique, get_owned, list_owned
from flireo.store.tables import AnalysisTemplate

router = APIRouter(
    prefix="/analysis-templates",
    tags=["Analysis templates"],
    responses=error_responses(400, 401, 413, 429),
)


class AnalysisTemplateEnvelope(BaseModel):
    analysis_template: AnalysisTemplateOut = Field(alias="analysisTemplate")


class AnalysisTemplateList(BaseModel):
    analysis_templates: list[AnalysisTemplateOut] = Field(alias="analysisTemplates")


def _out(row: AnalysisTemplate) -> AnalysisTemplateOut:
    return AnalysisTemplateOut.model_validate(row)


def _values(body: AnalysisTemplateCreate | AnalysisTemplateUpdate) -> dict[str, object]:
    values = body.model_dump(include=body.model_fields_set, mode="json")
    if "schema_" in values:
        values["schema"] = values.pop("schema_")
    return values


@router.get("", response_model=AnalysisTemplateList, summary="List analysis templates")
async def list_analysis_templates(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> AnalysisTemplateList:
    async with svc.db.read() as s:
        rows = await list_owned(s, AnalysisTemplate, who.org_id)
    return AnalysisTemplateList(analysisTemplates=[_out(r) for r in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AnalysisTemplateEnvelope,
    summary="Create analysis template",
    responses=error_responses(409),
)
async def create_analysis_template(
    body: AnalysisTemplateCreate,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> AnalysisTemplateEnvelope:
    async with svc.db.transaction() as s:
        row = AnalysisTemplate(org_id=who.org_id, **_values(body))
        s.add(row)
        await flush_unique(s, f"An analysis template named {body.name!r} exists", param="name")
    return AnalysisTemplateEnvelope(analysisTemplate=_out(row))


@router.get(
    "/{template_id}",
    response_model=AnalysisTemplateEnvelope,
    summary="Get analysis template",
    responses=error_responses(404),
)
async def get_analysis_template(
    template_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> AnalysisTemplateEnvelope:
    async with svc.db.read() as s:
        row = await get_owned(
            s, AnalysisTemplate, who.org_id, template_id, what="Analysis template"
        )
    return AnalysisTemplateEnvelope(analysisTemplate=_out(row))


@router.patch(
    "/{template_id}",
    response_model=AnalysisTemplateEnvelope,
    summary="Update analysis template",
    responses=error_responses(404, 409),
)
async def update_analysis_template(
    template_id: str,
    body: AnalysisTemplateUpdate,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> AnalysisTemplateEnvelope:
    async with svc.db.transaction() as s:
        row = await get_owned(
            s, AnalysisTemplate, who.org_id, template_id, what="Analysis template"
        )
        for key, value in _values(body).items():
            if value is None and key in ("name", "schema"):
                continue  # cannot be emptied
            setattr(row, key, value)
        await flush_unique(s, f"An analysis template named {row.name!r} exists", param="name")
    return AnalysisTemplateEnvelope(analysisTemplate=_out(row))


@router.delete(
    "/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete analysis template (agents keep their copies)",
    responses=error_responses(404),
)
async def delete_analysis_template(
    template_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    async with svc.db.transaction() as s:
        row = await get_owned(
            s, AnalysisTemplate, who.org_id, template_id, what="Analysis template"
        )
        await s.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
