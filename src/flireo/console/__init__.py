"""The web console: a static single-page client of the public REST API.

``/`` serves one HTML shell; ``/console/*`` its ES modules, stylesheet and the
vendored Swagger UI (no CDN: everything ships in the package). ``/docs`` is
Swagger UI loaded from those local assets. The console holds no server-side
state and no session: the browser keeps the API key in ``sessionStorage`` and
sends it as a Bearer header, like any other API client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PREFIX = "/console"
SWAGGER_PREFIX = f"{ASSETS_PREFIX}/vendor/swagger-ui"

#: The shell loads only same-origin scripts and styles (proof that nothing comes
#: from a CDN); recordings may be signed links to object storage on another origin.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: https: http:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
_NO_STORE = {"Cache-Control": "no-cache"}


def install_console(app: FastAPI, *, title: str) -> None:
    """Mount the console at ``/`` and Swagger UI (local assets) at ``/docs``."""
    app.mount(ASSETS_PREFIX, StaticFiles(directory=STATIC_DIR), name="console")

    index = STATIC_DIR / "index.html"

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def console_index() -> FileResponse:
        return FileResponse(
            index,
            media_type="text/html",
            headers={
                **_NO_STORE,
                "Content-Security-Policy": CONSOLE_CSP,
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            },
        )

    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )
