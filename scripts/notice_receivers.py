"""Receivers for the notices' tests and drill, on 127.0.0.1: a real SMTP
server (aiosmtpd, a test dependency) and an HTTP webhook receiver that checks
every Standard Webhooks signature. Both keep what arrived, in order, and can be
stopped or told to fail for a while."""

from __future__ import annotations

import asyncio
import email
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks import Webhook

from scripts.local_server import free_port

MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>]+)@", re.IGNORECASE | re.MULTILINE)


@dataclass
class MailBox:
    """An SMTP server on 127.0.0.1 keeping every message it accepts."""

    port: int = field(default_factory=free_port)
    raw: list[bytes] = field(default_factory=list)
    """Each message as it arrived (parsed only when :attr:`messages` is read:
    the receiver stays cheap, so a drill measures the sender, not this)."""
    message_ids: list[str] = field(default_factory=list)
    """The notice id of each message, in order (read once, when it arrived)."""
    sessions: list[Any] = field(default_factory=list)
    """The client's (host, port) of each message: one per SMTP session."""
    drop_after: int | None = None
    """Close each session after this many messages (as servers with a per-session limit do)."""

    def __post_init__(self) -> None:
        self._controller: Any = None
        self._lock = threading.Lock()
        self._parsed: list[EmailMessage] = []

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message accepted, in order, parsed (with ``X-Envelope-To``, its recipients)."""
        with self._lock:
            arrived = list(self.raw)
        while len(self._parsed) < len(arrived):
            self._parsed.append(email.message_from_bytes(arrived[len(self._parsed)], policy=default))  # type: ignore[arg-type]
        return list(self._parsed[: len(arrived)])

    def start(self) -> MailBox:
        from aiosmtpd.controller import Controller

        box = self

        class Keep:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
                content = b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n" + envelope.content
                found = MESSAGE_ID.search(envelope.content)
                notice_id = found.group(1).decode() if found else ""
                with box._lock:
                    box.raw.append(content)
                    box.message_ids.append(notice_id)
                    box.sessions.append(session.peer)
                    in_session = box.sessions.count(session.peer)
                if box.drop_after is not None and in_session >= box.drop_after:
                    asyncio.get_running_loop().call_soon(server.transport.close)  # after this answer goes out
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


class Quiet(ThreadingHTTPServer):
    """A kept-alive connection its sender dropped (a notifier killed) is no error worth a trace."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


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
    connections: list[Any] = field(default_factory=list)
    """The client's (host, port) of each POST: one per connection (kept alive: HTTP/1.1)."""
    delay: float = 0.0
    """Seconds each answer takes (a slow receiver)."""
    close_after: int | None = None
    """Close each connection after this many requests, without saying so in
    the answer (as a server dropping kept-alive connections does)."""

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> HookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections kept alive

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.connections.append(self.client_address)
                    served = receiver.connections.count(self.client_address)
                if receiver.close_after is not None and served >= receiver.close_after:
                    self.close_connection = True  # after this answer, which still looks kept alive
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.failing:
                    self._answer(500)
                    return
                try:
                    Webhook(receiver.secret).verify(body, headers)
                except Exception as error:
                    with receiver._lock:
                        receiver.refused.append(str(error))
                    self._answer(401)
                    return
                with receiver._lock:
                    receiver.received.append({"headers": headers, "body": orjson.loads(body), "path": self.path})
                    receiver.hook_ids.append(headers["webhook-id"])
                self._answer(receiver.answer, receiver.extra_headers)

            def _answer(self, status: int, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = Quiet(("127.0.0.1", self.port), Handler)
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
