"""``/tool-templates`` (resources.md §2). Wrappers are camelCase
(``toolTemplate``/``toolTemplates``) as on the Flireo API pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.domain.tools import (
    ToolTemplateCreate,
    ToolTemplateOut,
    ToolTemplateUpdate,
    template_config,
    validate_tool_config,
)
from flireo.errors import InvalidRequest
from flireo.services.container import Services
from flireo.services.targets import check_tool
from flireo.store.crud import flush_unique, get_owned, list_owned
from flireo.store.tables import ToolTemplate

router = APIRouter(
    prefix="/tool-templates", tags=["Tool templates"], responses=error_responses(400, 401, 413, 429)
)


class ToolTemplateEnvelope(BaseModel):
    tool_template: ToolTemplateOut = Field(alias="toolTemplate")


class ToolTemplateList(BaseModel):
    tool_templates: list[ToolTemplateOut] = Field(alias="toolTemplates")


def _out(row: ToolTemplate) -> ToolTemplateOut:
    return ToolTemplateOut.model_validate(row)


@router.get("", response_model=ToolTemplateList, summary="List all tool templates")
async def list_tool_templates(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ToolTemplateList:
    async with svc.db.read() as s:
        rows = await list_owned(s, ToolTemplate, who.org_id)
    return ToolTemplateList(toolTemplates=[_out(r) for r in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ToolTemplateEnvelope,
    summary="Create a new tool template",
    responses=error_responses(409),
)
async def create_tool_template(
    body: ToolTemplateCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ToolTemplateEnvelope:
    template = body.root
    async with svc.db.transaction() as s:
        row = ToolTemplate(
            org_id=who.org_id,
            name=template.name,
            description=template.description,
            tool_type=template.tool_type,
            tool_config=template_config(template),
        )
        await check_tool(row.tool_config, svc.settings, "tool_config")
        s.add(row)
        await flush_unique(s, f"A tool template named {template.name!r} exists", param="name")
    return ToolTemplateEnvelope(toolTemplate=_out(row))


@router.get(
    "/{template_id}",
    response_model=ToolTemplateEnvelope,
    summary="Get a tool template",
    responses=error_responses(404),
)
async def get_tool_template(
    template_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ToolTemplateEnvelope:
    async with svc.db.read() as s:
        row = await get_owned(s, ToolTemplate, who.org_id, template_id, what="Tool template")
    return ToolTemplateEnvelope(toolTemplate=_out(row))


@router.patch(
    "/{template_id}",
    response_model=ToolTemplateEnvelope,
    summary="Update a tool template",
    responses=error_responses(404, 409),
)
async def update_tool_template(
    template_id: str,
    body: ToolTemplateUpdate,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> ToolTemplateEnvelope:
    async with svc.db.transaction() as s:
        row = await get_owned(s, ToolTemplate, who.org_id, template_id, what="Tool template")
        fields = body.model_fields_set
        if "name" in fields and body.name is not None:
            row.name = body.name
        if "description" in fields:
            row.description = body.description
        tool_type = body.tool_type or row.tool_type
        if body.tool_config is not None or tool_type != row.tool_type:
            try:
                row.tool_config = validate_tool_config(
                    tool_type, body.tool_config or row.tool_config
                )
            except ValueError as exc:
                raise InvalidRequest(
                    f"tool_config does not fit tool_type {tool_type!r}: {exc}", param="tool_config"
                ) from exc
            row.tool_type = tool_type
            await check_tool(row.tool_config, svc.settings, "tool_config")
        await flush_unique(s, f"A tool template named {row.name!r} exists", param="name")
    return ToolTemplateEnvelope(toolTemplate=_out(row))


@router.delete(
    "/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a tool template (agents keep their copies)",
    responses=error_responses(404),
)
async def delete_tool_template(
    template_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    async with svc.db.transaction() as s:
        row = await get_owned(s, ToolTemplate, who.org_id, template_id, what="Tool template")
        await s.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
