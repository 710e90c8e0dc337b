"""The console in real Chromium (Debian's ``/usr/bin/chromium``, driven by Python
Playwright; no browser download) against a real ``flireo serve`` on a free port.

One server and one browser per module; each test gets a fresh browser context
(its own ``sessionStorage``). Screenshots go to ``tests/.artifacts/console/``
(ignored by git)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import skip_or_fail
from tests.fakes.openai_chat import FakeOpenAI
from tests.fakes.server import serve
from tests.live.server import LiveServer

CHROMIUM = os.environ.get("FLIREO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # the recording player is started by the test, not by a user's click
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts" / "console"
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}


class Api:
    """The REST API as the test sees it (to set things up and check the console's work)."""

    def __init__(self, server: LiveServer, key: str) -> None:
        self.server = server
        self.key = key
        self.client = httpx.Client(
            base_url=server.api, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def __call__(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.client.request(method, path, **kwargs)
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
        body: dict[str, Any] = r.json()
        return body

    def new_key(self) -> tuple[str, str]:
        """(key, prefix) of a fresh API key of the same organization (``flireo keys create``)."""
        created = self.server.command("keys", "create", "--name", "console-test")
        assert created.returncode == 0, created.stderr
        key = next(w for w in created.stdout.split() if w.startswith("flk_"))
        return key, key[:12]

    def revoke(self, prefix: str) -> None:
        revoked = self.server.command("keys", "revoke", prefix)
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key="sk-fake-openai")
    with serve(fake.app()) as srv:
        fake.url = f"{srv.url}/v1"
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # the fakes (LLM, webhook receiver) and sipp listen on loopback
    env = {"FLIREO_ALLOW_PRIVATE_URLS": "1"}
    for attempt in range(3):
        live = LiveServer(tmp_path_factory.mktemp("console"), env=env)
        try:
            live.start()
            break
        except RuntimeError as error:
            live.stop()
            # two "free" ports picked apart can be the same one (HTTP and SIP)
            if "address already in use" not in str(error) or attempt == 2:
                raise
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[Api]:
    assert server.api_key, "flireo serve printed no first API key"
    client = Api(server, server.api_key)
    yield client
    client.client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        skip_or_fail(f"{CHROMIUM} is not installed (make system-deps installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A fresh context (empty sessionStorage) at 1280×720; page errors fail the test."""
    context = browser.new_context(viewport=DESKTOP, base_url=server.url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    # shown by pytest when the test fails
    tab.on("console", lambda m: print(f"console.{m.type}: {m.text}"))
    tab.on("response", lambda r: r.status >= 400 and print(f"HTTP {r.status} {r.url}"))
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Any, key: str) -> None:
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
