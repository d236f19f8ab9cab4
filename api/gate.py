"""The gate every request passes before routing: callers under ``/v1`` are
authenticated (401 before anything else is looked at) against the keys in
force (the keys file as it is now, :class:`api.keys.KeyRing`) and request
bodies are capped (413), so no handler ever reads an unbounded body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.auth import identify
from api.keys import KeyRing
from api.problems import Unauthorized, problem

PROTECTED_PREFIX = "/v1"


class Gate(HttpMiddleware):
    def __init__(self, app: ASGIApp, keys: KeyRing, max_body_bytes: int):
        super().__init__(app)
        self.keys = keys
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization, declared = None, b""
        for name, value in scope["headers"]:  # names come lower-cased from the server
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        path = scope["path"]
        if path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/"):
            try:
                caller = identify(self.keys.current(), authorization)
            except Unauthorized as error:
                await problem(error.code, error.detail, error.title)(scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = caller
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = problem("payload_too_large", f"the request body is larger than {self.max_body_bytes} bytes")
        await answer(scope, receive, send)
