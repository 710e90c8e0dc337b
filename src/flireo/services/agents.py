"""Agents: defaults, template copies, the webhook secret in the vault."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flireo.domain.agents import (
    AgentCreate,
    AgentOut,
    AgentUpdate,
    AgentWarning,
    AnalysisPlan,
    StartSpeakingPlan,
    StopSpeakingPlan,
    _AgentFields,
    secret_options,
)
from flireo.domain.tools import tool_from_template
from flireo.errors import InvalidRequest
from flireo.services.credentials import KEY_FOR_PROVIDER, key_sources
from flireo.services.targets import check_agent_targets
from flireo.settings import Settings
from flireo.store.crud import get_owned
from flireo.store.tables import Agent, AnalysisTemplate, ToolTemplate
from flireo.store.vault import Vault
from flireo.webhooks.signing import (
    GENERATE_SECRET,
    new_webhook_secret,
    webhook_secret_problem,
)

#: body fields stored in their own columns, dumped as JSON-friendly values
_CONFIG_FIELDS = ("stt_config", "llm_config", "tts_config", "analysis_plan")
_PLAN_FIELDS = ("start_speaking_plan", "stop_speaking_plan")
_NON_NULLABLE = frozenset(
    {
        "name",
        "is_active",
        "voicemail_detection",
        "autonomous_silence_handling",
        "gdpr_mode",
        "recording_enabled",
        "recording_format",
    }
)
_NOT_COLUMNS = {"webhook_secret", "tool_template_ids", "analysis_template_id", *_PLAN_FIELDS}


def default_configs(settings: Settings) -> dict[str, dict[str, Any]]:
    """What an agent created without speech/LLM configs runs on (local by default)."""
    return {
        "stt_config": {
            "provider": settings.default_stt_provider,
            "model": settings.default_stt_model,
            "language": settings.default_language,
        },
        "llm_config": {
            "provider": settings.default_llm_provider,
            "model": settings.default_llm_model,
            "temperature": 0.7,
            "messages": [],
            "tools": [],
        },
        "tts_config": {
            "provider": settings.default_tts_provider,
            "voiceId": settings.default_tts_voice,
        },
    }


def _dump(value: Any) -> Any:
    return value.model_dump(by_alias=True, exclude_none=True, mode="json") if value else None


async def _copy_tool_templates(
    session: AsyncSession, org_id: str, template_ids: list[str], llm_config: dict[str, Any]
) -> dict[str, Any]:
    tools: list[dict[str, Any]] = list(llm_config.get("tools") or [])
    for index, template_id in enumerate(template_ids):
        template = await get_owned(
            session,
            ToolTemplate,
            org_id,
            template_id,
            what="Tool template",
            param=f"tool_template_ids.{index}",
        )
        tool = tool_from_template(template.tool_type, template.tool_config)
        # a template replaces a tool of the same name (or the same built-in type)
        key = tool.get("name") if tool["type"] == "function" else tool["type"]
        tools = [
            t
            for t in tools
            if (t.get("name") if t.get("type") == "function" else t.get("type")) != key
        ]
        tools.append(tool)
    return {**llm_config, "tools": tools}


async def _copy_analysis_template(
    session: AsyncSession, org_id: str, template_id: str, plan: dict[str, Any] | None
) -> dict[str, Any]:
    template = await get_owned(
        session,
        AnalysisTemplate,
        org_id,
        template_id,
        what="Analysis template",
        param="analysis_template_id",
    )
    messages = list(template.messages or [])
    if not messages:
        if template.system_prompt:
            messages.append({"role": "system", "content": template.system_prompt})
        if template.user_prompt:
            messages.append({"role": "user", "content": template.user_prompt})
    merged = dict(plan or {})
    merged["structuredDataPlan"] = {
        "enabled": True,
        "schema": template.schema,
        "messages": messages,
    }
    if template.min_messages_threshold is not None:
        merged["minMessagesThreshold"] = template.min_messages_threshold
    return AnalysisPlan.model_validate(merged).model_dump(by_alias=True, exclude_none=True)


async def _apply(
    session: AsyncSession,
    vault: Vault,
    agent: Agent,
    body: _AgentFields,
    fields: set[str],
) -> None:
    values = body.model_dump(include=fields - _NOT_COLUMNS - set(_CONFIG_FIELDS))
    if "webhook_events" in values and values["webhook_events"] is None:
        values["webhook_events"] = []
    for key, value in values.items():
        setattr(agent, key, value)
    for key in _CONFIG_FIELDS:
        if key in fields:
            setattr(
                agent, key, _dump(getattr(body, key)) or ({} if key != "analysis_plan" else None)
            )
    conversation = dict(agent.conversation or {})
    for key in _PLAN_FIELDS:
        if key in fields:
            conversation[key] = _dump(getattr(body, key)) or {}
    agent.conversation = conversation
    if body.tool_template_ids:
        agent.llm_config = await _copy_tool_templates(
            session, agent.org_id, body.tool_template_ids, agent.llm_config
        )
    if body.analysis_template_id:
        agent.analysis_plan = await _copy_analysis_template(
            session, agent.org_id, body.analysis_template_id, agent.analysis_plan
        )
    if "webhook_secret" in fields:
        await _set_webhook_secret(session, vault, agent, body.webhook_secret)


#: ``session.info`` key: secret id -> a generated secret, shown in full once (this response)
_SHOWN_ONCE = "flireo_generated_webhook_secrets"


async def _set_webhook_secret(
    session: AsyncSession, vault: Vault, agent: Agent, secret: str | None
) -> None:
    generated = secret == GENERATE_SECRET
    if generated:
        secret = new_webhook_secret()
    elif secret is not None and (problem := webhook_secret_problem(secret)):
        raise InvalidRequest(f"Invalid value for webhook_secret: {problem}", param="webhook_secret")
    if secret is None:
        if agent.webhook_secret_id:
            old, agent.webhook_secret_id = agent.webhook_secret_id, None
            await session.flush()
            await vault.delete(session, agent.org_id, old)
        return
    if secret == await vault.masked(session, agent.webhook_secret_id):
        return  # a client echoing back the masked value from GET: keep the secret
    row = await vault.put(
        session, agent.org_id, "webhook_secret", secret, replace_id=agent.webhook_secret_id
    )
    agent.webhook_secret_id = row.id
    if generated:
        session.info.setdefault(_SHOWN_ONCE, {})[row.id] = secret


async def create_agent(
    session: AsyncSession, vault: Vault, settings: Settings, org_id: str, body: AgentCreate
) -> Agent:
    agent = Agent(org_id=org_id, conversation={}, webhook_events=[], **default_configs(settings))
    session.add(agent)
    await _apply(session, vault, agent, body, set(body.model_fields_set) | {"name", "is_active"})
    await check_agent_targets(settings, webhook_url=agent.webhook_url, llm_config=agent.llm_config)
    await session.flush()
    return agent


async def update_agent(
    session: AsyncSession,
    vault: Vault,
    org_id: str,
    agent_id: str,
    body: AgentUpdate,
    *,
    settings: Settings | None = None,
) -> Agent:
    """``settings``: judge the agent's targets by the egress policy (the API does)."""
    agent = await get_owned(session, Agent, org_id, agent_id, what="Agent")
    # null for a field that cannot be null means "leave as is"
    fields = {
        f for f in body.model_fields_set if f not in _NON_NULLABLE or getattr(body, f) is not None
    }
    await _apply(session, vault, agent, body, fields)
    if settings is not None and fields & {"webhook_url", "llm_config", "tool_template_ids"}:
        await check_agent_targets(
            settings, webhook_url=agent.webhook_url, llm_config=agent.llm_config
        )
    await session.flush()
    return agent


#: (slot, provider) pairs that call a hosted vendor and so need its key
_HOSTED = {
    "stt_config": frozenset({"deepgram", "openai"}),
    "llm_config": frozenset({"openai", "anthropic", "groq", "xai", "mistral", "xai_realtime"}),
    "tts_config": frozenset({"openai", "elevenlabs", "cartesia"}),
}


async def agent_warnings(
    session: AsyncSession, settings: Settings, agent: Agent
) -> list[AgentWarning]:
    """What in the stored agent cannot work as configured (the agent is saved anyway)."""
    sources = await key_sources(session, settings, agent.org_id)
    out: list[AgentWarning] = []
    for slot, hosted in _HOSTED.items():
        config = getattr(agent, slot) or {}
        provider = str(config.get("provider") or "")
        if provider not in hosted:
            continue
        if slot == "llm_config" and config.get("base_url"):
            if provider in ("anthropic", "xai_realtime"):
                out.append(
                    AgentWarning(
                        code="base_url_ignored",
                        param="llm_config.base_url",
                        message=f"provider {provider!r} does not use base_url: calls go to "
                        "the vendor (use provider 'openai-compatible' for your own server)",
                    )
                )
            else:
                continue  # a server the agent names: called without a key when none is set
        key_name = KEY_FOR_PROVIDER.get(provider, provider)
        if sources.get(key_name) is None:
            out.append(
                AgentWarning(
                    code="missing_api_key",
                    param=f"{slot}.provider",
                    message=f"no {key_name!r} API key: calls with this agent fail with "
                    f"pipeline-error-...-missing-api-key until one is stored with "
                    f'POST /byok {{"provider": "{key_name}", "api_key": ...}}',
                )
            )
    if agent.webhook_events and not agent.webhook_url:
        out.append(
            AgentWarning(
                code="webhook_url_missing",
                param="webhook_url",
                message="webhook_events are selected but there is no webhook_url: "
                "nothing will be delivered",
            )
        )
    return out


_SCRUBBED = ("stt_config", "llm_config", "tts_config")


def _without_secrets(config: dict[str, Any] | None) -> dict[str, Any]:
    """A config stored before keys were refused (issue 14): never echo its key."""
    config = copy.deepcopy(config or {})
    for path in secret_options({k: v for k, v in config.items() if k not in ("tools", "messages")}):
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.get(part)
        if isinstance(node, dict):
            node.pop(last, None)
    return config


async def agent_out(session: AsyncSession, vault: Vault, agent: Agent) -> AgentOut:
    conversation = agent.conversation or {}
    start = StartSpeakingPlan.model_validate(conversation.get("start_speaking_plan") or {})
    stop = StopSpeakingPlan.model_validate(conversation.get("stop_speaking_plan") or {})
    return AgentOut.model_validate(
        {
            **{k: getattr(agent, k) for k in AgentOut.model_fields if hasattr(agent, k)},
            **{k: _without_secrets(getattr(agent, k)) for k in _SCRUBBED},
            "webhook_secret": session.info.get(_SHOWN_ONCE, {}).get(agent.webhook_secret_id)
            or await vault.masked(session, agent.webhook_secret_id),
            "webhook_events": list(agent.webhook_events or []),
            "start_speaking_plan": start.model_dump(by_alias=True),
            "stop_speaking_plan": stop.model_dump(by_alias=True),
        }
    )
