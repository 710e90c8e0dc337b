"""Stored agent + per-call overrides → the engine's :class:`SessionConfig`.

Precedence: the assistant-request reply (``Call.overrides``) over the call's
own fields (outbound ``first_message``/``context``, campaign prompt) over the
stored agent.
"""

from __future__ import annotations

from typing import Any

from flireo.engine.config import (
    BargeIn,
    CallInfo,
    Endpointing,
    PromptMessage,
    SessionConfig,
    SilenceHandling,
    VoicemailDetection,
    WebhookTarget,
    tools_from_llm_config,
)
from flireo.store.tables import Agent, Call, PhoneNumber


def effective_configs(call: Call, agent: Agent) -> dict[str, dict[str, Any]]:
    """stt/llm/tts configs for this call (an override replaces the whole object)."""
    overrides = call.overrides or {}
    return {
        key: dict(overrides.get(key) or getattr(agent, key) or {})
        for key in ("stt_config", "llm_config", "tts_config")
    }


def agent_configs(agent: Agent) -> dict[str, dict[str, Any]]:
    """:func:`effective_configs` of a call without overrides."""
    return {
        key: dict(getattr(agent, key) or {}) for key in ("stt_config", "llm_config", "tts_config")
    }


def _prompt(call: Call, llm: dict[str, Any]) -> tuple[PromptMessage, ...]:
    messages = [
        PromptMessage(role=m["role"], content=str(m["content"]))
        for m in llm.get("messages") or []
        if isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
    ]
    overrides = call.overrides or {}
    campaign_prompt = overrides.get("system_message")
    if campaign_prompt:
        messages.append(PromptMessage(role="system", content=str(campaign_prompt)))
    if call.context:
        messages.append(
            PromptMessage(role="system", content=f"Context for this call: {call.context}")
        )
    return tuple(messages)


def build_session_config(
    call: Call,
    agent: Agent,
    *,
    number: PhoneNumber | None,
    webhook_secret: str | None,
    configs: dict[str, dict[str, Any]] | None = None,
) -> SessionConfig:
    """``configs``: :func:`effective_configs` of this call, when the caller has them."""
    overrides = call.overrides or {}
    configs = configs if configs is not None else effective_configs(call, agent)
    llm, stt = configs["llm_config"], configs["stt_config"]
    conversation = agent.conversation or {}
    start = conversation.get("start_speaking_plan") or {}
    stop = conversation.get("stop_speaking_plan") or {}
    endpointing = Endpointing(
        silence_s=float(start.get("waitSeconds", 0.4)),
        max_extension_s=0.8 if start.get("smartEndpointingEnabled", True) else 0.0,
        turn_model=bool(start.get("smartEndpointingEnabled", True)),
        noise_suppression=bool(stt.get("noiseSuppression", False)),
    )
    barge_in = BargeIn(
        min_speech_ms=int(float(stop.get("voiceSeconds", 0.5)) * 1000),
        min_words=int(stop.get("numWords", 2)),
        hold_ms=int(float(stop.get("holdSeconds", 0.1)) * 1000),
    )
    webhook_live = agent.webhook_url and agent.webhook_disabled_at is None
    max_duration = overrides.get("maxDurationSeconds") or agent.max_duration_seconds
    first_message = overrides.get("firstMessage") or call.first_message or agent.first_message
    return SessionConfig(
        call=CallInfo(
            call_id=call.id,
            direction="outbound" if call.direction == "outbound" else "inbound",
            phone_number=call.assistant_phone,
            phone_number_name=number.name if number else None,
            customer_number=call.caller_phone,
        ),
        messages=_prompt(call, llm),
        first_message=first_message or None,
        temperature=float(llm["temperature"]) if llm.get("temperature") is not None else 0.7,
        max_tokens=int(llm["max_tokens"]) if llm.get("max_tokens") else None,
        tools=tools_from_llm_config(llm.get("tools") or []),
        webhook=WebhookTarget(
            url=agent.webhook_url if webhook_live else None,
            secret=webhook_secret,
            events=frozenset(agent.webhook_events) if agent.webhook_events else None,
        ),
        language=stt.get("language") or None,
        stt_keyterms=tuple(str(k) for k in stt.get("keyterms") or ()),
        voice=llm.get("voice") or None,
        endpointing=endpointing,
        barge_in=barge_in,
        silence=SilenceHandling(
            enabled=agent.autonomous_silence_handling,
            timeout_s=float(agent.silence_timeout_seconds)
            if agent.silence_timeout_seconds
            else None,
        ),
        voicemail=VoicemailDetection(
            enabled=agent.voicemail_detection and call.direction == "outbound",
            message=agent.voicemail_message,
        ),
        max_duration_seconds=float(max_duration) if max_duration else None,
    )
