"""Sending a notice: e-mail over SMTP, or a webhook signed per the Standard
Webhooks specification. Each send either returns or raises
:class:`DeliveryFailed` with one line saying why; both have timeouts, and a
webhook never follows a redirect (a 3xx is a failure)."""

from __future__ import annotations

import http.client
import ipaddress
import smtplib
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from standardwebhooks import Webhook

from ledger.notices.derive import Notice
from ledger.notices.settings import smtp_address
from ledger.notices.texts import render

MESSAGE_ID_DOMAIN = "notices.kmo-ledger"
SECRET_PREFIX = "whsec_"
MAX_ANSWER = 65536
"""The most of a webhook answer read (a longer one closes its connection)."""
UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP
"""Bodies in UTF-8, quoted-printable: readable text, lines SMTP can carry."""


class DeliveryFailed(Exception):
    """A send that did not get through (the notice is retried later)."""


def message_id(notice_id: str) -> str:
    """The stable Message-ID of a notice's e-mail: the same at every resend."""
    return f"<{notice_id}@{MESSAGE_ID_DOMAIN}>"


def email_message(notice: Notice, address: str, sender: str) -> Message:
    """The notice as an e-mail: plain text and an HTML alternative, in Dutch.

    Made with the compat32 MIME classes, which set a header without parsing
    it: about a tenth of the time of ``EmailMessage`` under the standard
    policy, most of the notifier's work per e-mail. No header can be injected:
    a CR or LF in a header's value is refused here (ValueError)."""
    subject, text, html = render(notice.type, notice.data, notice.party)
    headers = {
        "Subject": subject,
        "From": sender,
        "To": address,
        "Message-ID": message_id(notice.id),
        "Date": format_datetime(datetime.now().astimezone()),
        "Content-Language": "nl",
        "X-Notice-Type": notice.type,
    }
    message = MIMEMultipart("alternative")
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"a line break in the {name} header")
        message[name] = value if value.isascii() else Header(value, "utf-8", header_name=name)  # type: ignore[assignment]
    for body, subtype in ((text, "plain"), (html, "html")):
        part = MIMEText(body, subtype, UTF8_QP)  # type: ignore[arg-type]  # a Charset is taken as well as its name
        del part["MIME-Version"]  # once, on the message
        message.attach(part)
    return message


class Smtp:
    """One SMTP session, opened when first needed and kept for the next sends
    (the notifier closes it at the end of each pass). A kept session the server
    dropped meanwhile (an idle or per-session limit) is opened again once for
    the message at hand; a server that does not answer a fresh session fails
    the send after one timeout."""

    def __init__(self, url: str | None, sender: str, timeout: float):
        self.url, self.sender, self.timeout = url, sender, timeout
        self._connection: smtplib.SMTP | None = None
        self.sessions = 0
        """Sessions opened so far."""

    def send(self, notice: Notice, address: str) -> None:
        if self.url is None:
            raise DeliveryFailed("no SMTP server configured (KMO_LEDGER_SMTP_URL)")
        message = email_message(notice, address, self.sender)
        kept = self._connection is not None
        try:
            try:
                self._session().send_message(message)
            except (OSError, smtplib.SMTPServerDisconnected):
                if not kept:
                    raise
                self.close()  # the kept session went away between two messages: a new one, once
                self._session().send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise DeliveryFailed(f"SMTP {self.url}: {_one_line(error)}") from error

    def _session(self) -> smtplib.SMTP:
        if self._connection is None:
            assert self.url is not None
            host, port = smtp_address(self.url)
            self._connection = smtplib.SMTP(host, port, timeout=self.timeout)
            self.sessions += 1
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (OSError, smtplib.SMTPException):
                self._connection.close()
            self._connection = None


# --------------------------------------------------------------------------- webhooks


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or None: https, or plain http to a
    loopback address only; no user or password in it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is no number raises)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "a webhook URL is https://host/path"
    if parts.username is not None or parts.password is not None:
        return "a webhook URL carries no user or password"
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return "plain http is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https"
    if any(char.isspace() or ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        return "a URL has no spaces or control characters"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a Standard Webhooks secret (``whsec_`` and 24 to 64 bytes in base64), or None."""
    import base64
    import binascii

    if not secret.startswith(SECRET_PREFIX):
        return "a webhook secret is whsec_ followed by base64"
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return "a webhook secret is whsec_ followed by base64"
    if not 24 <= len(key) <= 64:
        return "a webhook secret holds 24 to 64 bytes"
    return None


def webhook_body(notice: Notice, timestamp: datetime) -> bytes:
    """The JSON body: the notice's id, type, when it was sent and its data."""
    return orjson.dumps({"id": notice.id, "type": notice.type, "timestamp": timestamp.isoformat(), "data": notice.data})


def post_webhook(notice: Notice, url: str, secret: str | None, timeout: float, now: datetime) -> None:
    """POST the notice to ``url`` on a connection of its own (see :class:`Webhooks`)."""
    hooks = Webhooks(timeout)
    try:
        hooks.post(notice, url, secret, now)
    finally:
        hooks.close()


class Webhooks:
    """Webhook POSTs over kept-alive connections, one per host, used by one
    thread at a time. Each POST carries ``webhook-id`` (the notice id),
    ``webhook-timestamp`` and ``webhook-signature``; any answer but 2xx fails.
    A kept connection the receiver closed meanwhile is opened again once for
    the POST at hand (the receiver may then see it twice, under the same id)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}
        self.connections = 0
        """Connections opened so far."""

    def post(self, notice: Notice, url: str, secret: str | None, now: datetime) -> None:
        problem = webhook_url_problem(url)
        if problem:
            raise DeliveryFailed(f"webhook URL refused: {problem}")
        if not secret:
            raise DeliveryFailed("no webhook secret in the provider directory")
        body = webhook_body(notice, now)
        headers = {
            "content-type": "application/json",
            "webhook-id": notice.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(notice.id, now, body.decode()),
            "user-agent": "kmo-ledger-notifier",
        }
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (parts.scheme, parts.hostname or "", parts.port)
        kept = key in self._connections
        try:
            try:
                status = self._exchange(key, path, body, headers)
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                if not kept:
                    raise
                status = self._exchange(key, path, body, headers)  # the kept connection went away: a new one, once
        except (OSError, http.client.HTTPException) as error:
            raise DeliveryFailed(f"webhook {parts.hostname}: {_one_line(error)}") from error
        if not 200 <= status < 300:
            kind = "a redirect, not followed" if 300 <= status < 400 else "not accepted"
            raise DeliveryFailed(f"webhook {parts.hostname} answered HTTP {status} ({kind})")

    def _exchange(self, key: tuple[str, str, int | None], path: str, body: bytes, headers: dict[str, str]) -> int:
        """One request and its answer's status; the connection is kept only when the answer was read whole."""
        connection = self._connections.pop(key, None)
        if connection is None:
            scheme, host, port = key
            kind: Any = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            connection = kind(host, port, timeout=self.timeout)
            self.connections += 1
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(MAX_ANSWER)
        except BaseException:
            connection.close()
            raise
        if response.isclosed() and not response.will_close:
            self._connections[key] = connection
        else:  # more answer than we read, or the receiver closes: not reused
            connection.close()
        return response.status

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
