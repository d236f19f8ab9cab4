"""Receivers for the notices' tests and drill, on 127.0.0.1: a real SMTP
server (aiosmtpd, a test dependency) and an HTTP webhook receiver that checks
every Standard Webhooks signature. Both keep what arrived, in order, and can be
stopped or told to fail for a while."""

from __future__ import annotations

import email
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks import Webhook

from scripts.local_server import free_port


@dataclass
class MailBox:
    """An SMTP server on 127.0.0.1 keeping every message it accepts."""

    port: int = field(default_factory=free_port)
    messages: list[EmailMessage] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    """The notice id of each message, in order (read once, when it arrived)."""

    def __post_init__(self) -> None:
        self._controller: Any = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailBox:
        from aiosmtpd.controller import Controller

        box = self

        class Keep:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
                message = email.message_from_bytes(envelope.content, policy=default)
                message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
                notice_id = str(message["Message-ID"]).strip("<>").split("@")[0]
                with box._lock:
                    box.messages.append(message)  # type: ignore[arg-type]
                    box.message_ids.append(notice_id)
                return "250 OK"

        self._controller = Controller(Keep(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.message_ids)


@dataclass
class HookReceiver:
    """An HTTP server on 127.0.0.1 taking webhooks: a bad signature is a 401 and
    is kept apart; while ``failing`` it answers 500 (and keeps nothing)."""

    secret: str
    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    hook_ids: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failing: bool = False
    answer: int = 204
    extra_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> HookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.failing:
                    self.send_response(500)
                    self.end_headers()
                    return
                try:
                    Webhook(receiver.secret).verify(body, headers)
                except Exception as error:
                    with receiver._lock:
                        receiver.refused.append(str(error))
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.received.append({"headers": headers, "body": orjson.loads(body), "path": self.path})
                    receiver.hook_ids.append(headers["webhook-id"])
                self.send_response(receiver.answer)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.hook_ids)
