"""Sending a notice: e-mail over SMTP, or a webhook signed per the Standard
Webhooks specification. Each send either returns or raises
:class:`DeliveryFailed` with one line saying why; both have timeouts, and a
webhook never follows a redirect (a 3xx is a failure)."""

from __future__ import annotations

import http.client
import ipaddress
import smtplib
from datetime import datetime
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from standardwebhooks import Webhook

from ledger.notices.derive import Notice
from ledger.notices.settings import smtp_address
from ledger.notices.texts import render

MESSAGE_ID_DOMAIN = "notices.kmo-ledger"
POLICY = default.clone(max_line_length=998)
"""The standard policy (it refuses CR or LF in any header: no header can be
injected), folding only lines SMTP could not carry, so a subject stays one line."""
SECRET_PREFIX = "whsec_"


class DeliveryFailed(Exception):
    """A send that did not get through (the notice is retried later)."""


def message_id(notice_id: str) -> str:
    """The stable Message-ID of a notice's e-mail: the same at every resend."""
    return f"<{notice_id}@{MESSAGE_ID_DOMAIN}>"


def email_message(notice: Notice, address: str, sender: str) -> EmailMessage:
    """The notice as an e-mail: plain text and an HTML alternative, in Dutch."""
    subject, text, html = render(notice.type, notice.data, notice.party)
    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = address
    message["Message-ID"] = message_id(notice.id)
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Content-Language"] = "nl"
    message["X-Notice-Type"] = notice.type
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class Smtp:
    """One SMTP connection, opened when first needed and kept for the next sends."""

    def __init__(self, url: str | None, sender: str, timeout: float):
        self.url, self.sender, self.timeout = url, sender, timeout
        self._connection: smtplib.SMTP | None = None

    def send(self, notice: Notice, address: str) -> None:
        if self.url is None:
            raise DeliveryFailed("no SMTP server configured (KMO_LEDGER_SMTP_URL)")
        message = email_message(notice, address, self.sender)
        try:
            if self._connection is None:
                host, port = smtp_address(self.url)
                self._connection = smtplib.SMTP(host, port, timeout=self.timeout)
            self._connection.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise DeliveryFailed(f"SMTP {self.url}: {_one_line(error)}") from error

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
    """POST the notice to ``url`` with ``webhook-id`` (the notice id),
    ``webhook-timestamp`` and ``webhook-signature``; any answer but 2xx fails."""
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
    connection_class: Any = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryFailed(f"webhook {parts.hostname}: {_one_line(error)}") from error
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        kind = "a redirect, not followed" if 300 <= response.status < 400 else "not accepted"
        raise DeliveryFailed(f"webhook {parts.hostname} answered HTTP {response.status} ({kind})")


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
