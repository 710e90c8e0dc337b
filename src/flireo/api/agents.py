"""``/agents`` (resources.md §1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.domain.agents import AgentCreate, AgentOut, AgentUpdate, AgentWarning
from flireo.services import agents as svc_agents
from flireo.services.container import Services
from flireo.store.crud import get_owned, list_owned
from flireo.store.tables import Agent

router = APIRouter(prefix="/agents", tags=["Agents"], responses=error_responses(400, 401, 413, 429))


class AgentEnvelope(BaseModel):
    agent: AgentOut


class AgentWriteEnvelope(AgentEnvelope):
    #: configurations that are saved but cannot work as they are (empty: none found)
    warnings: list[AgentWarning] = Field(default_factory=list)


class AgentList(BaseModel):
    agents: list[AgentOut]


@router.get("", response_model=AgentList, summary="List all agents")
async def list_agents(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> AgentList:
    async with svc.db.read() as s:
        rows = await list_owned(s, Agent, who.org_id)
        return AgentList(agents=[await svc_agents.agent_out(s, svc.vault, a) for a in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentWriteEnvelope,
    summary="Create a new agent",
    responses=error_responses(404),
)
async def create_agent(
    body: AgentCreate, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> AgentWriteEnvelope:
    async with svc.db.transaction() as s:
        agent = await svc_agents.create_agent(s, svc.vault, svc.settings, who.org_id, body)
        return AgentWriteEnvelope(
            agent=await svc_agents.agent_out(s, svc.vault, agent),
            warnings=await svc_agents.agent_warnings(s, svc.settings, agent),
        )


@router.get(
    "/{agent_id}",
    response_model=AgentEnvelope,
    summary="Get an agent",
    responses=error_responses(404),
)
async def get_agent(
    agent_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> AgentEnvelope:
    async with svc.db.read() as s:
        agent = await get_owned(s, Agent, who.org_id, agent_id, what="Agent")
        return AgentEnvelope(agent=await svc_agents.agent_out(s, svc.vault, agent))


@router.patch(
    "/{agent_id}",
    response_model=AgentWriteEnvelope,
    summary="Update an agent (only fields present change)",
    responses=error_responses(404),
)
async def update_agent(
    agent_id: str,
    body: AgentUpdate,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> AgentWriteEnvelope:
    async with svc.db.transaction() as s:
        agent = await svc_agents.update_agent(
            s, svc.vault, who.org_id, agent_id, body, settings=svc.settings
        )
        return AgentWriteEnvelope(
            agent=await svc_agents.agent_out(s, svc.vault, agent),
            warnings=await svc_agents.agent_warnings(s, svc.settings, agent),
        )


@router.delete(
    "/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an agent",
    responses=error_responses(404),
)
async def delete_agent(
    agent_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    async with svc.db.transaction() as s:
        agent = await get_owned(s, Agent, who.org_id, agent_id, what="Agent")
        if agent.webhook_secret_id:
            secret_id, agent.webhook_secret_id = agent.webhook_secret_id, None
            await s.flush()
            await svc.vault.delete(s, who.org_id, secret_id)
        await s.delete(agent)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
