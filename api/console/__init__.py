"""The read-only web console under ``/console``: pages rendered on the server
(Jinja2, every value escaped), a stylesheet and no script, signed in with an
API key exchanged for a session cookie (:mod:`api.console.session`).

:func:`install` mounts it on the API's app; the gate still caps every
request's body, and the console authenticates by its own cookie (the gate
authenticates ``/v1`` only).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.console.router import HERE, public, router
from api.console.session import Sessions, console_secret
from api.keys import KeyRing

PREFIX = "/console"
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
"""On every response under /console: no inline script or style, nothing from
another host, never in a frame, forms posted only here."""
NO_STORE = (b"cache-control", b"no-store")
"""Pages (not the stylesheet) are not kept by the browser: a signed-out page is gone."""


class ConsoleHeaders(HttpMiddleware):
    """Adds :data:`HEADERS` to every response under ``/console``."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        static = path.startswith(PREFIX + "/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _value in message.get("headers", [])}
                extra = [h for h in HEADERS if h[0] not in names]
                if not static and NO_STORE[0] not in names:
                    extra.append(NO_STORE)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, keys: KeyRing) -> None:
    """Serve the console on ``app``, signed in with the keys of ``keys``."""
    app.state.console_sessions = Sessions(console_secret(app.state.settings), keys)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(public)
    app.include_router(router)
    app.add_middleware(ConsoleHeaders)
