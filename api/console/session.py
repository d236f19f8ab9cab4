"""The console's session: an API key typed once into the sign-in form is
exchanged for a signed cookie that names the key (its id, role and provider),
never the key itself, and expires.

The cookie is signed with :mod:`itsdangerous` (HMAC-SHA1 over a key derived
from the secret, with a timestamp: a cookie older than :data:`SESSION_SECONDS`
is refused), HttpOnly (no script reads it), ``SameSite=Strict`` (no other site
makes the browser send it), ``Path=/console`` and ``Secure`` over HTTPS. On
every request the key it names must still be in the keys file with the same
role: a revoked key ends its sessions at once (within the keys file's recheck).

Cross-site request forgery: the cookie is ``SameSite=Strict``, and every
``POST`` must come with an ``Origin`` header naming this server (browsers send
it on every form post); the console's only posts sign in and out.

The secret: ``KMO_LEDGER_CONSOLE_SECRET`` if set, otherwise a random one kept
in ``console-secret`` beside the keys file (created on first start, owner-only,
0600), so every server process of one deployment signs alike and sessions
survive a restart.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from api.auth import Caller
from api.keys import KeyRing
from api.settings import KEY_ID_DIGITS, Settings, SettingsError

COOKIE = "kmo_console"
PATH = "/console"
SESSION_SECONDS = 8 * 3600
"""A working day: after it the cookie is refused and the key asked again."""
SECRET_FILE = "console-secret"
_SALT = "kmo-ledger console session"


def console_secret(settings: Settings) -> str:
    """The signing secret: from the settings, or the file beside the keys file
    (created now, 0600, if missing; a second process starting at the same time
    reads the one the first wrote)."""
    if settings.console_secret is not None:
        return settings.console_secret.get_secret_value()
    path = settings.keys_file().parent / SECRET_FILE
    try:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_secret(path)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        return _read_secret(path)
    except OSError as error:
        raise SettingsError(
            f"the console's secret {path} cannot be made or read ({error.strerror}): "
            "set KMO_LEDGER_CONSOLE_SECRET (32 characters or more) or let the server write beside its keys file"
        ) from None


def _read_secret(path: Path) -> str:
    for _attempt in range(50):  # another process creating it writes it a moment later
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) >= 32:
            return secret
        time.sleep(0.01)
    raise SettingsError(f"the console's secret in {path} is shorter than 32 characters: remove it or set another")


class Sessions:
    """Issues, reads and ends console sessions for the keys of ``keys``."""

    def __init__(self, secret: str, keys: KeyRing):
        self._signer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.keys = keys

    def start(self, response: Response, caller: Caller, request: Request) -> None:
        value = self._signer.dumps({"key_id": caller.key_id, "role": caller.role, "provider": caller.provider})
        response.set_cookie(
            COOKIE,
            value,
            max_age=SESSION_SECONDS,
            path=PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    @staticmethod
    def end(response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE, path=PATH, secure=request.url.scheme == "https", httponly=True, samesite="strict"
        )

    def caller(self, request: Request) -> Caller | None:
        """The signed-in caller, or None: no cookie, a forged or expired one, or
        one naming a key that is no longer in the keys file with that role."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            fields = self._signer.loads(value, max_age=SESSION_SECONDS)
        except BadSignature:  # SignatureExpired included
            return None
        if not isinstance(fields, dict):
            return None
        key_id = fields.get("key_id")
        for digest, key in self.keys.current().items():
            if digest[:KEY_ID_DIGITS] == key_id:
                if key.role != fields.get("role") or key.provider != fields.get("provider"):
                    return None
                return Caller(key_id=key_id, role=key.role, provider=key.provider, name=key.name)
        return None


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this server: its ``Origin`` names the
    host the request was sent to."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or not host or origin == "null":
        return False
    return urlsplit(origin).netloc == host
