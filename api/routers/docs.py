"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc),
served with every script, style and icon they load from this server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (ReDoc its fonts from
Google too), so on a back-office network cut off from the internet ``/docs``
was a blank page. The assets come from the ``fastapi-offline`` package (MIT;
Swagger UI 5 under Apache 2.0, ReDoc 2 under MIT, FastAPI's icon), mounted at
:data:`ASSETS`, outside ``/v1``: public, like the document they read.

Each page also carries a Content-Security-Policy that lets the browser load
nothing from another host: ReDoc's side menu shows Redocly's logo from their
CDN, which the policy stops before any request leaves.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS, REDOC = "/docs", "/redoc"
ASSETS = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")
"""Where the assets are: the ``static`` folder of the installed ``fastapi_offline`` package."""
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
"""No badge from the online validator (validator.swagger.io), which Swagger UI shows by default."""

PAGES: tuple[tuple[str, Callable[..., HTMLResponse], str, dict[str, str], dict[str, Any]], ...] = (
    (
        DOCS,
        get_swagger_ui_html,
        "Swagger UI",
        dict(
            swagger_js_url="swagger-ui-bundle.js", swagger_css_url="swagger-ui.css", swagger_favicon_url="favicon.png"
        ),
        {"oauth2_redirect_url": None, "swagger_ui_parameters": SWAGGER_UI_PARAMETERS},
    ),
    (
        REDOC,
        get_redoc_html,
        "ReDoc",
        {"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon.png"},
        {"with_google_fonts": False},  # no fonts from Google
    ),
)
"""Each page: its path, FastAPI's function that writes it, its name, its asset
files (by the function's argument) and its other arguments."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets (build ``app`` with
    ``docs_url=None, redoc_url=None``, so FastAPI's CDN pages are not there)."""
    app.mount(ASSETS, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    for path, render, name, files, options in PAGES:
        app.add_api_route(path, _serving(app, render, name, files, options), methods=["GET"], include_in_schema=False)


def _serving(
    app: FastAPI, render: Callable[..., HTMLResponse], name: str, files: dict[str, str], options: dict[str, Any]
) -> Callable[[Request], Awaitable[HTMLResponse]]:
    """The endpoint of one documentation page: FastAPI's page with its assets
    on this server, under the path the app is served at, with the same-origin
    policy."""

    async def endpoint(request: Request) -> HTMLResponse:
        root = _root(request)
        assets = {argument: f"{root}{ASSETS}/{file}" for argument, file in files.items()}
        page = render(openapi_url=root + (app.openapi_url or ""), title=f"{app.title} - {name}", **assets, **options)
        return _same_origin_only(page)

    return endpoint


def _root(request: Request) -> str:
    """The path the app is mounted under behind a proxy (``root_path``), if any."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _same_origin_only(page: HTMLResponse) -> HTMLResponse:
    """``page`` with a policy under which the browser loads scripts, styles,
    images, fonts and data from this server only, runs no inline script but the
    page's own (allowed by its hash), and shows the page in no frame. Styles may
    be inline (ReDoc writes its own), workers may start from ``blob:`` (ReDoc's
    search) and images may be ``data:`` URLs (Swagger UI's icons)."""
    scripts = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    )
    page.headers["Content-Security-Policy"] = "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {scripts}".rstrip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    page.headers["X-Frame-Options"] = "DENY"
    return page
