"""The console's pages in real Chromium against a real server: sign-in, the agent
form (create, edit, an API error at its field), a 401 mid-session that keeps the
draft, campaign pause and CSV leads, /docs offline, labels and keyboard use, and
a screenshot of every page at desktop and phone width."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.console.conftest import DESKTOP, PHONE, Api, screenshot, sign_in
from tests.live.server import LiveServer

pytestmark = pytest.mark.slow

PAGES = ["agents", "agents/new", "numbers", "calls", "campaigns", "usage", "settings"]

#: every control on the page has an accessible name (label, aria-label, aria-labelledby)
UNLABELLED_JS = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => !el.closest('[hidden]') && el.type !== 'hidden')
  .filter(el => {
    if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
    if (el.labels && el.labels.length) return false;
    if (el.tagName === 'BUTTON' && el.textContent.trim()) return false;
    return true;
  })
  .map(el => el.outerHTML.slice(0, 120))"""


def test_sign_in_says_when_the_key_is_wrong_then_signs_in(page: Any, api: Api) -> None:
    page.goto("/")
    assert page.get_by_role("navigation", name="Main").is_hidden()
    page.get_by_label("API key").fill("flk_" + "x" * 40)
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#sign-in-error")
    error.get_by_text(re.compile("not accepted")).wait_for()
    assert page.get_by_label("API key").get_attribute("aria-invalid") == "true"
    assert page.evaluate("sessionStorage.getItem('flireo.apiKey')") is None

    page.get_by_label("API key").fill(api.key)
    page.get_by_label("API key").press("Enter")  # the keyboard submits too
    page.get_by_role("heading", name="Agents", level=1).wait_for()
    # the key is in this tab's sessionStorage only: never in the URL or a cookie
    assert page.evaluate("sessionStorage.getItem('flireo.apiKey')") == api.key
    assert api.key not in page.url
    assert not page.context.cookies()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").wait_for()
    assert page.evaluate("sessionStorage.getItem('flireo.apiKey')") is None


def test_create_and_edit_an_agent_with_a_field_error(page: Any, api: Api) -> None:
    sign_in(page, api.key)
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name", exact=True).fill("Console desk")
    page.get_by_label("First message").fill("Hello from the console.")
    llm = page.get_by_role("group", name="Language model (LLM)")
    llm.get_by_label("Provider").select_option("openai")
    # the model list comes from /byok/config for the chosen provider
    options = llm.locator("datalist option").evaluate_all("os => os.map(o => o.value)")
    assert "gpt-4o-mini" in options
    llm.get_by_label("Model").fill("gpt-4o-mini")
    llm.get_by_label("System prompt").fill("You are the console's test agent.")
    temperature = llm.get_by_label("Temperature")
    temperature.fill("5")
    page.get_by_role("group", name="Text-to-speech (TTS)").get_by_label("Provider").select_option(
        "piper"
    )
    page.get_by_label("end-of-call-report").check()
    page.get_by_role("button", name="Create agent").click()

    # the API refuses temperature 5 and names the field: the error is shown there
    # (the control's aria-describedby names its error line first)
    error_id = temperature.get_attribute("aria-describedby").split()[0]
    page.locator(f"#{error_id}").get_by_text(re.compile("temperature", re.I)).wait_for()
    assert temperature.get_attribute("aria-invalid") == "true"
    assert temperature.evaluate("el => el === document.activeElement")
    assert api("GET", "/agents")["agents"] == []

    temperature.fill("0.4")
    page.get_by_role("button", name="Create agent").click()
    page.wait_for_url(re.compile(r"#/agents/[0-9a-f-]{36}$"))
    agent_id = page.url.rsplit("/", 1)[1]
    agent = api("GET", f"/agents/{agent_id}")["agent"]
    assert agent["name"] == "Console desk"
    assert agent["first_message"] == "Hello from the console."
    assert agent["llm_config"]["provider"] == "openai"
    assert agent["llm_config"]["temperature"] == 0.4
    assert agent["llm_config"]["messages"][0] == {
        "role": "system",
        "content": "You are the console's test agent.",
    }
    assert agent["tts_config"]["provider"] == "piper"
    assert agent["webhook_events"] == ["end-of-call-report"]

    # the form shows what was saved; edit one field and only that one changes
    page.get_by_role("button", name="Save changes").wait_for()
    assert page.get_by_label("Name", exact=True).input_value() == "Console desk"
    page.get_by_label("First message").fill("Hello again, edited.")
    page.get_by_label("Max duration seconds").fill("600")
    # the JSON view shows the same agent
    page.get_by_text("JSON view").click()
    shown = page.get_by_label(re.compile("Agent JSON")).input_value()
    assert '"first_message": "Hello again, edited."' in shown
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Agent saved.").wait_for()
    edited = api("GET", f"/agents/{agent_id}")["agent"]
    assert edited["first_message"] == "Hello again, edited."
    assert edited["max_duration_seconds"] == 600
    assert edited["llm_config"] == agent["llm_config"]
    # the agent page hosts the browser-call widget
    page.locator("section#talk-to-agent[aria-label='Talk to this agent']").wait_for()


def test_a_401_mid_session_returns_to_sign_in_and_keeps_the_draft(page: Any, api: Api) -> None:
    key, prefix = api.new_key()
    sign_in(page, key)
    page.goto("/#/agents/new")
    page.get_by_label("Name", exact=True).fill("Draft agent")
    page.get_by_label("First message").fill("Typed before the key was revoked.")
    page.get_by_label("end-of-call-report").check()
    api.revoke(prefix)

    page.get_by_role("button", name="Create agent").click()
    page.locator("#sign-in-error").get_by_text(re.compile("no longer accepted")).wait_for()
    assert page.evaluate("sessionStorage.getItem('flireo.apiKey')") is None
    page.get_by_label("API key").fill(api.key)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_text("Your unsaved changes were restored.").wait_for()
    assert page.url.endswith("#/agents/new")
    assert page.get_by_label("Name", exact=True).input_value() == "Draft agent"
    assert page.get_by_label("First message").input_value() == "Typed before the key was revoked."
    assert page.get_by_label("end-of-call-report").is_checked()
    page.get_by_role("button", name="Create agent").click()
    page.wait_for_url(re.compile(r"#/agents/[0-9a-f-]{36}$"))
    names = [a["name"] for a in api("GET", "/agents")["agents"]]
    assert "Draft agent" in names


def _campaign(api: Api, name: str, status: str) -> dict[str, Any]:
    agents = api("GET", "/agents")["agents"]
    if not agents:
        agents = [api("POST", "/agents", json={"name": "Caller"})["agent"]]
    agent_id = agents[0]["id"]
    return api(
        "POST",
        "/campaigns",
        json={"name": name, "agent_id": agent_id, "status": status},
    )["campaign"]


def test_pause_a_campaign_and_add_leads_from_csv(page: Any, api: Api) -> None:
    campaign = _campaign(api, "Spring outreach", "scheduled")
    sign_in(page, api.key)
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Spring outreach").click()
    page.locator("#campaign-status [data-status='scheduled']").wait_for()
    page.get_by_role("button", name="Pause campaign").click()
    page.locator("#campaign-status [data-status='paused']").wait_for()
    assert api("GET", f"/campaigns/{campaign['id']}")["campaign"]["status"] == "paused"

    page.get_by_label("Or paste CSV").fill(
        'phone_number,name,company\n+31612345670,Ann,"Acme, Inc"\n+31612345671,Bob,Initech\n'
    )
    page.get_by_role("button", name="Add leads").click()
    page.locator("#lead-counts li[data-status='pending']").get_by_text("2").wait_for()
    leads = api("GET", f"/campaigns/{campaign['id']}/leads")["leads"]
    assert sorted((lead["phone_number"], lead["variables"]["company"]) for lead in leads) == [
        ("+31612345670", "Acme, Inc"),
        ("+31612345671", "Initech"),
    ]
    # a bad row is named by its CSV line
    page.get_by_label("Or paste CSV").fill("phone_number\n+31612345672\nnot-a-number\n")
    page.get_by_role("button", name="Add leads").click()
    page.get_by_text(re.compile("Row 3 of the CSV")).wait_for()
    assert page.get_by_role("button", name="Resume campaign").is_visible()


def test_docs_render_offline(page: Any, server: LiveServer) -> None:
    """Swagger UI and the console load nothing from another origin."""
    outside: list[str] = []

    def guard(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", guard)
    page.goto("/docs")
    page.locator(".opblock").first.wait_for()
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/agents" in op for op in operations)
    assert len(operations) > 40
    page.goto("/")
    page.get_by_label("API key").wait_for()
    assert outside == []


def test_every_page_is_labelled_fits_a_phone_and_is_screenshot(page: Any, api: Api) -> None:
    agent = api("POST", "/agents", json={"name": "Screenshot agent"})["agent"]
    campaign = _campaign(api, "Screenshot campaign", "draft")
    sign_in(page, api.key)
    # keyboard: Tab reaches the main navigation and Enter follows a link
    page.keyboard.press("Tab")
    for _ in range(12):
        if page.evaluate("document.activeElement.dataset.nav") == "numbers":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Numbers and SIP trunks", level=1).wait_for()

    routes = [*PAGES, f"agents/{agent['id']}", f"campaigns/{campaign['id']}"]
    for viewport, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(viewport)
        for route in routes:
            page.goto(f"/#/{route}")
            page.locator(f'#view > .page[data-route="#/{route}"] h1').first.wait_for()
            page.locator("#view:not([aria-busy])").wait_for(state="attached")
            assert page.evaluate(UNLABELLED_JS) == [], route
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"] + 1, f"{route} is {width}px wide at {suffix}"
            name = route if "/" not in route else route.split("/")[0].rstrip("s") + "-detail"
            name = "agent-new" if route == "agents/new" else name
            screenshot(page, f"{name}-{suffix}")
