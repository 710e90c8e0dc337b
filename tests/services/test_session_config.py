from __future__ import annotations

from flireo.engine.config import EndCallTool, FunctionTool, TransferCallTool
from flireo.services.session_config import build_session_config
from flireo.store.tables import Agent, Call, PhoneNumber


def agent(**kw: object) -> Agent:
    base: dict[str, object] = {
        "id": "a1",
        "org_id": "o",
        "name": "Support",
        "first_message": "Hello from Acme.",
        "webhook_url": "https://hooks.example.com/x",
        "webhook_events": ["tool-calls"],
        "stt_config": {"provider": "deepgram", "language": "nl", "keyterms": ["Flireo"]},
        "llm_config": {
            "provider": "openai",
            "temperature": 0.3,
            "messages": [{"role": "system", "content": "Be brief."}],
            "tools": [
                {"name": "lookup", "description": "Find a contact"},
                {"type": "endCall"},
                {
                    "type": "transferCall",
                    "destinations": [{"number": "+31612345678", "message": "Moment."}],
                },
            ],
        },
        "tts_config": {"provider": "piper"},
        "conversation": {
            "start_speaking_plan": {"waitSeconds": 0.6, "smartEndpointingEnabled": False},
            "stop_speaking_plan": {"numWords": 3, "voiceSeconds": 0.8, "holdSeconds": 0.25},
        },
        "autonomous_silence_handling": True,
        "voicemail_detection": True,
        "voicemail_message": "Please call back.",
        "max_duration_seconds": 300,
    }
    base.update(kw)
    return Agent(**base)


def test_agent_settings_reach_the_engine() -> None:
    call = Call(
        id="c1",
        org_id="o",
        direction="inbound",
        caller_phone="+31611111111",
        assistant_phone="+31850835037",
    )
    cfg = build_session_config(call, agent(), number=PhoneNumber(name="Main"), webhook_secret="s")
    assert cfg.call.call_type == "inboundPhoneCall"
    assert (cfg.call.phone_number, cfg.call.phone_number_name, cfg.call.customer_number) == (
        "+31850835037",
        "Main",
        "+31611111111",
    )
    assert cfg.first_message == "Hello from Acme."
    assert [m.content for m in cfg.messages] == ["Be brief."]
    assert cfg.temperature == 0.3
    assert [type(t) for t in cfg.tools] == [FunctionTool, EndCallTool, TransferCallTool]
    assert cfg.webhook.url == "https://hooks.example.com/x"
    assert cfg.webhook.sends("tool-calls")
    assert not cfg.webhook.sends("status-update")
    assert (cfg.language, cfg.stt_keyterms) == ("nl", ("Flireo",))
    assert (cfg.endpointing.silence_s, cfg.endpointing.max_extension_s) == (0.6, 0.0)
    assert (cfg.barge_in.min_words, cfg.barge_in.min_speech_ms) == (3, 800)
    assert cfg.barge_in.hold_ms == 250
    assert cfg.silence.enabled
    assert not cfg.voicemail.enabled  # inbound: voicemail detection is for outbound calls
    assert cfg.max_duration_seconds == 300


def test_per_call_overrides_win() -> None:
    call = Call(
        id="c2",
        org_id="o",
        direction="outbound",
        first_message="Hi {{name}} filled: Hi Jan",
        context="VIP customer",
        overrides={
            "firstMessage": "Hallo Jan!",
            "llm_config": {
                "provider": "openai",
                "messages": [{"role": "system", "content": "Override."}],
            },
            "maxDurationSeconds": 60,
            "system_message": "You call Jan of Acme.",
        },
    )
    cfg = build_session_config(
        call, agent(webhook_disabled_at=None), number=None, webhook_secret=None
    )
    assert cfg.first_message == "Hallo Jan!"
    assert [m.content for m in cfg.messages] == [
        "Override.",
        "You call Jan of Acme.",
        "Context for this call: VIP customer",
    ]
    assert cfg.tools == ()
    assert cfg.max_duration_seconds == 60
    assert cfg.voicemail.enabled
    assert cfg.voicemail.message == "Please call back."
