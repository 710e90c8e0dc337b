"""NUL, C0 control and bidi-override characters in names and identifiers are a
400 naming the field on every resource (issue 14 item 7); prose may hold
newlines and tabs but never NUL. On SQLite and PostgreSQL (where a NUL was a 500)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

#: (method, path, body with ``{X}`` where the bad text goes, the field named)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("/agents", {"name": "Front{X}desk"}, "name"),
    ("/agents", {"name": "a", "business_name": "Acme{X}"}, "business_name"),
    (
        "/agents",
        {"name": "a", "llm_config": {"provider": "openai", "model": "gpt{X}"}},
        "llm_config.model",
    ),
    (
        "/agents",
        {"name": "a", "stt_config": {"provider": "whisper", "keyterms": ["ok", "k{X}"]}},
        "stt_config.keyterms",
    ),
    ("/agents", {"name": "a", "webhook_secret": "s{X}cret"}, "webhook_secret"),
    # the body is a union tagged by tool_type: the tag leads the param
    (
        "/tool-templates",
        {"name": "t{X}", "tool_type": "endCall", "tool_config": {}},
        "endCall.name",
    ),
    ("/analysis-templates", {"name": "{X}a", "schema": {"type": "object"}}, "name"),
    ("/sip-trunks", {"name": "trunk{X}", "host": "sip.example.com"}, "name"),
    ("/numbers", {"phone_number": "+31850835037", "name": "Sales{X}"}, "name"),
    ("/campaigns", {"name": "Spring{X}", "agent_id": "{AGENT}"}, "name"),
    (
        "/campaigns",
        {"name": "c", "agent_id": "{AGENT}", "timezone": "Europe/Amsterdam{X}"},
        "timezone",
    ),
    ("/calls/outbound", {"destination": "+31612345678", "agent_id": "ag{X}"}, "agent_id"),
]

BAD_IN_NAMES = ["\x00", "\x07", "\n", "\t", "\x1b", "\x7f", "\u202e", "\u202a", "\u2066", "\u2069"]


def _fill(value: Any, bad: str, agent: str) -> Any:
    if isinstance(value, str):
        return value.replace("{X}", bad).replace("{AGENT}", agent)
    if isinstance(value, list):
        return [_fill(v, bad, agent) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, bad, agent) for k, v in value.items()}
    return value


@pytest.fixture
async def agent_id(api: httpx.AsyncClient) -> str:
    r = await api.post("/agents", json={"name": "Plain"})
    assert r.status_code == 201, r.text
    return str(r.json()["agent"]["id"])


def _refused(r: httpx.Response, param: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (
        "invalid_request",
        "invalid_request_error",
        param,
    ), error
    assert param in error["message"]


async def test_names_refuse_control_and_bidi_characters(
    api: httpx.AsyncClient, agent_id: str
) -> None:
    for path, body, param in CASES:
        for bad in BAD_IN_NAMES:
            r = await api.post(path, json=_fill(body, bad, agent_id))
            _refused(r, param)
    # nothing was stored
    assert [a["name"] for a in (await api.get("/agents")).json()["agents"]] == ["Plain"]


async def test_updates_refuse_them_too(api: httpx.AsyncClient, agent_id: str) -> None:
    for bad in ("\x00", "\u202e"):
        _refused(await api.patch(f"/agents/{agent_id}", json={"name": f"x{bad}"}), "name")
    number = (await api.post("/numbers", json={"phone_number": "+31850835037"})).json()
    r = await api.patch(f"/numbers/{number['number']['id']}", json={"name": "n\u2067"})
    _refused(r, "name")


async def test_prose_keeps_newlines_and_tabs_but_never_nul(api: httpx.AsyncClient) -> None:
    prose = "Hello!\n\tHow can I help you today?\r\n"
    r = await api.post("/agents", json={"name": "Prose", "first_message": prose})
    assert r.status_code == 201, r.text
    assert r.json()["agent"]["first_message"] == prose
    r = await api.post("/agents", json={"name": "a", "first_message": "Hi\x00"})
    _refused(r, "first_message")
    messages = [{"role": "system", "content": "Be kind.\x00"}]
    r = await api.post(
        "/agents", json={"name": "a", "llm_config": {"provider": "openai", "messages": messages}}
    )
    _refused(r, "llm_config.messages")
    r = await api.post(
        "/analysis-templates",
        json={"name": "a", "schema": {"type": "object"}, "system_prompt": "Sum up\x00"},
    )
    _refused(r, "system_prompt")


async def test_json_objects_refuse_nul(api: httpx.AsyncClient, agent_id: str) -> None:
    campaign = (await api.post("/campaigns", json={"name": "c", "agent_id": agent_id})).json()
    leads = f"/campaigns/{campaign['campaign']['id']}/leads"
    ok = {"phone_number": "+31612345678", "variables": {"note": "line one\nline two"}}
    assert (await api.post(leads, json=ok)).status_code == 201
    bad = {"phone_number": "+31612345679", "variables": {"note": "x\x00"}}
    _refused(await api.post(leads, json=bad), "variables")
    tool = {
        "name": "lookup",
        "tool_type": "function",
        "tool_config": {
            "name": "lookup",
            "description": "Finds a customer.\nBy phone number.",
            "url": "https://tools.example.com/x",
            "parameters": {"type": "object", "title": "a\x00"},
        },
    }
    r = await api.post("/tool-templates", json=tool)
    assert r.status_code == 400, r.text
    assert "U+0000" in r.json()["error"]["message"]
    # vendor options (extra keys of the vendor configs), keys and values
    for options in ({"\x00": []}, {"top_k": ["a\x00"]}):
        llm = {"provider": "openai", **options}
        _refused(await api.post("/agents", json={"name": "a", "llm_config": llm}), "llm_config")
    llm = {"provider": "openai", "top_k": 5, "note": "line\nbreak"}
    assert (await api.post("/agents", json={"name": "a", "llm_config": llm})).status_code == 201


async def test_path_and_query_values_refuse_them(api: httpx.AsyncClient) -> None:
    for path, param in [
        ("/agents/%00", "agent_id"),
        ("/agents/ab%E2%80%AEcd", "agent_id"),
        ("/calls/x%00y", "call_id"),
    ]:
        r = await api.get(path)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["param"] == param
    assert (await api.delete("/agents/%00")).status_code == 400
    assert (await api.patch("/agents/%00", json={"name": "x"})).status_code == 400
    r = await api.get("/calls", params={"agent_id": "a\x00"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "agent_id"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_openapi_document_states_the_rules(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]

    def string_of(prop: dict[str, Any]) -> dict[str, Any]:
        return next(s for s in [prop, *prop.get("anyOf", [])] if s.get("type") == "string")

    name = string_of(schemas["AgentCreate"]["properties"]["name"])["pattern"]
    prose = string_of(schemas["AgentCreate"]["properties"]["first_message"])["pattern"]
    assert re.fullmatch(name, "Front desk")
    assert re.fullmatch(prose, "Hello!\n\tWelcome.")
    for bad in BAD_IN_NAMES:
        assert not re.fullmatch(name, f"a{bad}b"), repr(bad)
    assert not re.fullmatch(prose, "a\x00b")
    # nested models and path parameters too
    content = schemas["ChatMessageIn"]["properties"]["content"]
    assert content["pattern"] == prose
    # a prose field under its camelCase alias
    reply = string_of(schemas["FunctionTool"]["properties"]["asyncResponse"])
    assert reply["pattern"] == prose
    model = string_of(schemas["LLMConfig"]["properties"]["model"])
    assert model["pattern"] == name
    get_agent = doc["paths"]["/api/v1/agents/{agent_id}"]["get"]
    (agent_id,) = [p for p in get_agent["parameters"] if p["name"] == "agent_id"]
    assert agent_id["schema"]["pattern"] == name
    # patterns that allowed any non-space character now leave out controls as well
    url = string_of(schemas["AgentCreate"]["properties"]["webhook_url"])["pattern"]
    assert re.fullmatch(url, "https://hooks.example.com/x")
    assert not re.fullmatch(url, "https://hooks.example.com/x\x01")
    # cross-field rules: in JSON Schema where it can say them, in descriptions otherwise
    assert schemas["LLMConfig"]["then"] == {"required": ["base_url"]}
    assert "unique" in schemas["LLMConfig"]["properties"]["tools"]["description"]
    assert "differ" in schemas["CampaignCreate"]["properties"]["schedule_end_time"]["description"]
    calls = doc["paths"]["/api/v1/calls"]["get"]["parameters"]
    assert "start_date" in next(p for p in calls if p["name"] == "end_date")["description"]
