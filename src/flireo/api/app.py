"""The FastAPI application: routers under ``/api/v1``, errors, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from flireo import __version__
from flireo.api import (
    agents,
    analysis_templates,
    byok,
    calls,
    campaigns,
    do_not_call,
    domains,
    live,
    numbers,
    recordings,
    sip_trunks,
    tool_templates,
    usage,
    voices,
)
from flireo.api.errors import install_error_handlers
from flireo.api.middleware import BodySizeLimitMiddleware, RateLimitMiddleware
from flireo.api.openapi_rules import install_text_rules
from flireo.console import install_console
from flireo.services.container import Services

API_PREFIX = "/api/v1"
ROUTERS = [
    agents.router,
    tool_templates.router,
    numbers.router,
    live.router,  # before calls: /calls/events is not a call id
    calls.router,
    recordings.router,
    usage.router,
    sip_trunks.router,
    byok.router,
    domains.router,
    analysis_templates.router,
    campaigns.router,
    do_not_call.router,
    voices.router,
]


def create_app(services: Services, *, manage_lifecycle: bool = True) -> FastAPI:
    """``manage_lifecycle``: start/stop the bus and dialer with the app (the CLI
    passes False when it runs them itself next to the SIP endpoint)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await services.bus.start()
            await services.dialer.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await services.dialer.stop()
                await services.bus.stop()

    app = FastAPI(
        title="Flireo API",
        version=__version__,
        description=(
            "Self-hosted voice-AI phone agents. Authenticate with "
            "`Authorization: Bearer <API key>`. Errors use "
            '`{"error": {"code", "message", "param", "type"}}`.'
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        # /docs is served by the console with local Swagger UI assets (no CDN)
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    api = APIRouter(prefix=API_PREFIX)
    for router in ROUTERS:
        api.include_router(router)
    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    install_console(app, title=app.title)

    install_error_handlers(app)
    install_text_rules(app)
    settings = services.settings
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=lambda: settings.max_body_bytes)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=services.limiter,
        limit=lambda: settings.rate_limit_per_minute,
        # the console's static assets are not API calls
        exempt_prefixes=("/docs", "/redoc", "/healthz", "/console/"),
    )
    return app
