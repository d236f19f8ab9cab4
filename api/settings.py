"""Settings from the environment, read when the app is built (never at import).

``KMO_LEDGER_DATABASE_URL`` names the event store; ``KMO_LEDGER_API_KEYS_FILE``
the JSON file of API keys and their roles. Without a keys file, one with fresh
random keys is created under ``./var`` (see :func:`ensure_keys_file`). The file
is read here (:func:`read_keys_file`); :mod:`api.keys` follows its changes while
serving and changes it for ``kmo-ledger keys``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from ledger.build import LedgerSettings
from ledger.domain.text import Line
from ledger.storage import private_folder

Role = Literal["back-office", "provider", "auditor", "reconciler"]
ROLES: tuple[Role, ...] = ("back-office", "provider", "auditor", "reconciler")
DEFAULT_KEYS_FILE = Path("var") / "api-keys.json"
EXAMPLE_PROVIDER = "DV.O207084"


class SettingsError(Exception):
    """The configuration cannot be used; the message says why in one line."""


KeyName = Annotated[Line, Field(max_length=100)]


class ApiKey(BaseModel):
    """One caller: its role, for a provider its registration number, and the name
    of the service or person holding it (recorded with the key id on every event)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Role
    provider: str | None = None
    name: KeyName | None = None

    @model_validator(mode="after")
    def _provider_names_itself(self) -> ApiKey:
        from ledger.domain.errors import LedgerError
        from ledger.domain.identifiers import provider_number

        if self.role == "provider":
            if not self.provider:
                raise ValueError('a provider key names its registration number ("provider": "DV.O207084")')
            try:
                object.__setattr__(self, "provider", provider_number(self.provider))
            except LedgerError as error:
                raise ValueError(error.detail) from None
        elif self.provider is not None:
            article = "an" if self.role == "auditor" else "a"
            raise ValueError(f"only a provider key names a provider, not {article} {self.role} key")
        return self


KEY_ID_DIGITS = 12
HASHED = "sha256:"
"""The prefix of an entry that holds the SHA-256 of a key instead of the key."""
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def key_id(secret: str) -> str:
    """The id recorded on events for a key: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()[:KEY_ID_DIGITS]


def entry_digest(entry: str) -> str:
    """The SHA-256 hex digest of the key an entry of the keys file stands for:
    ``sha256:<digest>`` gives it, any other entry is the key itself. The first
    12 digits are the key's id."""
    if entry.startswith(HASHED):
        return entry[len(HASHED) :]
    return hashlib.sha256(entry.encode()).hexdigest()


def read_keys_file(path: Path, empty_allowed: bool = False) -> dict[str, ApiKey]:
    """The keys in ``path`` by the SHA-256 hex digest of their secret (the
    secrets are not kept); :class:`SettingsError` says in one line what is wrong.

    An entry is the key itself (at least 16 characters) or ``sha256:`` and the
    lowercase hex SHA-256 of the key. ``empty_allowed``: a file whose every key
    was revoked (``{}``) is read as no key rather than refused."""
    return parse_keys(read_json(path), path, empty_allowed)


def read_json(path: Path) -> Any:
    """The JSON held in ``path``; :class:`SettingsError` if there is none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"API keys file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise SettingsError(f"API keys file {path} cannot be read as JSON: {error}") from None


def parse_keys(raw: Any, path: Path, empty_allowed: bool = False) -> dict[str, ApiKey]:
    """The keys of a keys file's JSON ``raw`` (read from ``path``), checked."""
    if not isinstance(raw, dict):
        raise SettingsError(f"API keys file {path} must hold a JSON object of keys")
    if not raw and not empty_allowed:
        raise SettingsError(f"API keys file {path} holds no key (kmo-ledger keys add makes one)")
    keys: dict[str, ApiKey] = {}
    for entry, fields in raw.items():
        if entry.startswith(HASHED):
            if not _HEX_DIGEST.fullmatch(entry[len(HASHED) :]):
                raise SettingsError(f"API keys file {path}: a hashed entry is sha256: and 64 lowercase hex digits")
        elif len(entry) < 16:
            raise SettingsError(f"API keys file {path}: every key is at least 16 characters long")
        digest = entry_digest(entry)
        if digest in keys:
            raise SettingsError(f"API keys file {path}: key {digest[:KEY_ID_DIGITS]} is listed twice")
        keys[digest] = api_key(fields, f"API keys file {path}: key {digest[:KEY_ID_DIGITS]}")
    return keys


def api_key(fields: Any, where: str) -> ApiKey:
    """One entry's fields as an :class:`ApiKey`, or a :class:`SettingsError` naming ``where``."""
    try:
        return ApiKey.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        cause = first.get("ctx", {}).get("error")  # a check of ours: its own words, without "Value error, "
        reason = str(cause) if isinstance(cause, ValueError) else first["msg"]
        raise SettingsError(f"{where}: {field + ': ' if field else ''}{reason}") from None


class Settings(LedgerSettings):
    """The server's configuration: ``KMO_LEDGER_*`` environment variables (the
    ledger's own, :class:`ledger.build.LedgerSettings`, and the API's)."""

    model_config = SettingsConfigDict(env_prefix="KMO_LEDGER_", extra="ignore")
    api_keys_file: Path | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    console_secret: SecretStr | None = Field(default=None, min_length=32)
    """Signs the web console's session cookies (``KMO_LEDGER_CONSOLE_SECRET``);
    without it, a random one kept in ``console-secret`` beside the keys file."""

    def keys_file(self) -> Path:
        """The configured keys file, or the default one under ``./var``."""
        return self.api_keys_file or DEFAULT_KEYS_FILE

    def load_keys(self) -> dict[str, ApiKey]:
        """Keys by the SHA-256 hex digest of their secret (the secrets are not kept)."""
        path = self.keys_file()
        if self.api_keys_file is None:
            ensure_keys_file(path)
        return read_keys_file(path)


def ensure_keys_file(path: Path = DEFAULT_KEYS_FILE) -> bool:
    """Create ``path`` with one fresh random key per role (and a provider key) unless
    it exists; readable by its owner only. Returns whether it was created."""
    if path.exists():
        return False
    keys = {
        secrets.token_urlsafe(32): {"role": "back-office"},
        secrets.token_urlsafe(32): {"role": "auditor"},
        secrets.token_urlsafe(32): {"role": "reconciler"},
        secrets.token_urlsafe(32): {"role": "provider", "provider": EXAMPLE_PROVIDER},
    }
    private_folder(path.parent)  # 0700, like the database's folder (usually the same ./var)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(keys, file, indent=2)
        file.write("\n")
    return True
