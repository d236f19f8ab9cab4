"""Transport limits: how long a client may take to send a request, and how many
connections the server holds at once.

uvicorn closes an idle keep-alive connection, but nothing else: a client that
connects and never finishes its headers, or trickles its body a byte at a
time, holds its connection (and a file descriptor) for as long as it likes.
The protocols here are uvicorn's own with three limits added, read once per
process from the ``KMO_LEDGER_*`` environment (:class:`TransportLimits`):

- the headers of a request must be complete ``header_timeout`` seconds after
  its first byte could be sent (the connection's start, or the end of the
  previous response);
- its body must be complete ``body_timeout`` seconds after its headers;
- at most ``max_connections`` connections are open; one more is answered
  503 ``too_many_connections`` and closed.

A connection past a deadline is closed with a log line: the request was never
whole, so the application never decided anything on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("kmo_ledger.api")


class TransportLimits(BaseSettings):
    """``KMO_LEDGER_HEADER_TIMEOUT``, ``KMO_LEDGER_BODY_TIMEOUT`` (seconds) and
    ``KMO_LEDGER_MAX_CONNECTIONS`` (per server process)."""

    model_config = SettingsConfigDict(env_prefix="KMO_LEDGER_", extra="ignore")
    header_timeout: float = Field(default=10.0, gt=0, le=3600)
    body_timeout: float = Field(default=30.0, gt=0, le=3600)
    max_connections: int = Field(default=256, ge=1, le=100_000)


@cache
def limits() -> TransportLimits:
    """The limits of this process (each worker reads the same environment)."""
    return TransportLimits()


TOO_MANY_CONNECTIONS = json.dumps(
    {
        "type": "urn:kmo-ledger:problem:too_many_connections",
        "title": "The ledger cannot answer now",
        "status": 503,
        "detail": "the server holds as many connections as it may; try again shortly",
        "code": "too_many_connections",
    }
).encode()
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/problem+json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(TOO_MANY_CONNECTIONS)).encode() + b"\r\n\r\n" + TOO_MANY_CONNECTIONS
)


class ReadDeadlines:
    """Mixed into a uvicorn HTTP protocol: the limits of the module docstring.

    The protocol's own state tells which part of a request it waits for: no
    request yet (or the last one answered) means headers; a request whose
    body is not complete means body; otherwise the application is working and
    no read deadline runs. Each change of that phase starts its clock."""

    connections: set[Any]
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None
    _phase: str | None = None
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > limits().max_connections:
            log.warning("refused a connection from %s: %d open", _peer(self.client), len(self.connections) - 1)
            transport.write(REFUSAL)
            transport.close()
            return
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)  # type: ignore[misc]

    def _current_phase(self) -> str | None:
        if self.cycle is None or self.cycle.response_complete:
            return "headers"
        if self.cycle.more_body:
            return "body"
        return None

    def _follow(self) -> None:
        phase = self._current_phase()
        if phase == self._phase or self.transport.is_closing():
            return
        self._stop()
        self._phase = phase
        if phase is not None:
            seconds = limits().header_timeout if phase == "headers" else limits().body_timeout
            self._deadline = self.loop.call_later(seconds, self._expire, phase, seconds)

    def _expire(self, phase: str, seconds: float) -> None:
        self._deadline = None
        if self._current_phase() != phase or self.transport.is_closing():
            return
        log.warning("closed a connection from %s: its request's %s took over %g s", _peer(self.client), phase, seconds)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"


class LimitedH11Protocol(ReadDeadlines, H11Protocol):  # type: ignore[misc]
    """uvicorn's pure-Python HTTP/1.1 protocol with the transport limits."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional in uvicorn: the pure-Python one then
    LimitedProtocol: type = LimitedH11Protocol
else:

    class LimitedHttpToolsProtocol(ReadDeadlines, HttpToolsProtocol):  # type: ignore[misc]
        """uvicorn's httptools protocol (its default when installed) with the limits."""

    LimitedProtocol = LimitedHttpToolsProtocol

PROTOCOL = f"{__name__}:{LimitedProtocol.__name__}"
"""The import string uvicorn's worker processes load the protocol by."""
