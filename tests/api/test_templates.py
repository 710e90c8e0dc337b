from __future__ import annotations

import httpx

LOOKUP = {
    "name": "Customer Lookup",
    "description": "Look up customer information by phone number",
    "tool_type": "function",
    "tool_config": {
        "name": "lookup_customer",
        "description": "Retrieves customer details from CRM",
        "url": "https://crm.example.com/tools",
        "parameters": {
            "type": "object",
            "properties": {"phone": {"type": "string"}},
            "required": ["phone"],
        },
    },
}


async def test_tool_template_crud_uses_camel_case_wrappers(api: httpx.AsyncClient) -> None:
    r = await api.post("/tool-templates", json=LOOKUP)
    assert r.status_code == 201, r.text
    template = r.json()["toolTemplate"]
    assert template["tool_config"]["name"] == "lookup_customer"
    assert template["tool_config"]["async"] is False
    listed = (await api.get("/tool-templates")).json()["toolTemplates"]
    assert [t["id"] for t in listed] == [template["id"]]
    r = await api.patch(f"/tool-templates/{template['id']}", json={"description": "new"})
    assert r.json()["toolTemplate"]["description"] == "new"
    assert (await api.delete(f"/tool-templates/{template['id']}")).status_code == 204
    assert (await api.get(f"/tool-templates/{template['id']}")).status_code == 404


async def test_tool_template_accepts_the_guide_flat_shape(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/tool-templates",
        json={
            "name": "check_availability",
            "description": "Check free slots for a date (YYYY-MM-DD)",
            "type": "function",
            "async": True,
            "asyncResponse": "One moment, I'm checking.",
            "parameters": {"type": "object", "properties": {"date": {"type": "string"}}},
        },
    )
    assert r.status_code == 201, r.text
    config = r.json()["toolTemplate"]["tool_config"]
    assert config["name"] == "check_availability"
    assert config["async"] is True
    assert config["asyncResponse"] == "One moment, I'm checking."


async def test_tool_template_errors(api: httpx.AsyncClient) -> None:
    assert (await api.post("/tool-templates", json=LOOKUP)).status_code == 201
    dup = await api.post("/tool-templates", json=LOOKUP)
    assert dup.status_code == 409
    assert dup.json()["error"]["param"] == "name"
    bad = await api.post(
        "/tool-templates",
        json={"name": "t", "tool_type": "transferCall", "tool_config": {"destinations": []}},
    )
    assert bad.status_code == 400
    bad_type = await api.post(
        "/tool-templates", json={"name": "u", "tool_type": "sms", "tool_config": {}}
    )
    assert bad_type.status_code == 400
    assert bad_type.json()["error"]["param"] == "tool_type"


async def test_agent_copies_templates_and_survives_their_deletion(api: httpx.AsyncClient) -> None:
    lookup = (await api.post("/tool-templates", json=LOOKUP)).json()["toolTemplate"]
    transfer = (
        await api.post(
            "/tool-templates",
            json={
                "name": "To sales",
                "tool_type": "transferCall",
                "tool_config": {
                    "destinations": [
                        {"type": "number", "number": "+31612345678", "message": "Eén moment."}
                    ]
                },
            },
        )
    ).json()["toolTemplate"]
    analysis = (
        await api.post(
            "/analysis-templates",
            json={
                "name": "Sentiment",
                "system_prompt": "You analyse calls.",
                "user_prompt": "Transcript: {{transcript}}",
                "schema": {"type": "object", "properties": {"sentiment": {"type": "integer"}}},
                "min_messages_threshold": 2,
            },
        )
    ).json()["analysisTemplate"]
    r = await api.post(
        "/agents",
        json={
            "name": "a",
            "tool_template_ids": [lookup["id"], transfer["id"]],
            "analysisTemplateId": analysis["id"],
        },
    )
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    tools = agent["llm_config"]["tools"]
    assert [t["type"] for t in tools] == ["function", "transferCall"]
    assert tools[0]["name"] == "lookup_customer"
    plan = agent["analysis_plan"]
    assert plan["minMessagesThreshold"] == 2
    assert plan["structuredDataPlan"]["messages"][1]["content"] == "Transcript: {{transcript}}"
    for path in (f"/tool-templates/{lookup['id']}", f"/analysis-templates/{analysis['id']}"):
        assert (await api.delete(path)).status_code == 204
    again = (await api.get(f"/agents/{agent['id']}")).json()["agent"]
    assert again["llm_config"]["tools"] == tools
    unknown = await api.post("/agents", json={"name": "b", "tool_template_ids": [lookup["id"]]})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "tool_template_ids.0"


async def test_analysis_template_crud_and_schema_validation(api: httpx.AsyncClient) -> None:
    body = {"name": "Intent", "schema": {"type": "object"}, "userPrompt": "{{transcript}}"}
    created = await api.post("/analysis-templates", json=body)
    assert created.status_code == 201, created.text
    template = created.json()["analysisTemplate"]
    assert template["user_prompt"] == "{{transcript}}"
    assert template["schema"] == {"type": "object"}
    assert (await api.post("/analysis-templates", json=body)).status_code == 409
    bad = await api.post("/analysis-templates", json={"name": "x", "schema": {"type": 12}})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "schema"
    missing = await api.post("/analysis-templates", json={"name": "x"})
    assert missing.json()["error"]["code"] == "missing_field"
    r = await api.patch(f"/analysis-templates/{template['id']}", json={"description": "d"})
    assert r.json()["analysisTemplate"]["description"] == "d"
    listed = (await api.get("/analysis-templates")).json()["analysisTemplates"]
    assert len(listed) == 1
