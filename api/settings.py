"""Settings from the environment, read when the app is built (never at import).

``KMO_LEDGER_DATABASE_URL`` names the event store; ``KMO_LEDGER_API_KEYS_FILE``
the JSON file of API keys and their roles. Without a keys file, one with fresh
random keys is created under ``./var`` (see :func:`ensure_keys_file`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from ledger.build import LedgerSettings
from ledger.storage import private_folder

Role = Literal["back-office", "provider", "auditor", "reconciler"]
ROLES: tuple[Role, ...] = ("back-office", "provider", "auditor", "reconciler")
DEFAULT_KEYS_FILE = Path("var") / "api-keys.json"
EXAMPLE_PROVIDER = "DV.O207084"


class SettingsError(Exception):
    """The configuration cannot be used; the message says why in one line."""


class ApiKey(BaseModel):
    """One caller: its role and, for a provider, its registration number."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Role
    provider: str | None = None

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
            raise ValueError(f"only a provider key names a provider, not a {self.role} key")
        return self


KEY_ID_DIGITS = 12


def key_id(secret: str) -> str:
    """The id recorded on events for a key: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()[:KEY_ID_DIGITS]


class Settings(LedgerSettings):
    """The server's configuration: ``KMO_LEDGER_*`` environment variables (the
    ledger's own, :class:`ledger.build.LedgerSettings`, and the API's)."""

    model_config = SettingsConfigDict(env_prefix="KMO_LEDGER_", extra="ignore")
    api_keys_file: Path | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    def keys_file(self) -> Path:
        """The configured keys file, or the default one under ``./var``."""
        return self.api_keys_file or DEFAULT_KEYS_FILE

    def load_keys(self) -> dict[str, ApiKey]:
        """Keys by the SHA-256 hex digest of their secret (the secrets are not kept)."""
        path = self.keys_file()
        if self.api_keys_file is None:
            ensure_keys_file(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"API keys file {path} does not exist") from None
        except (OSError, ValueError) as error:
            raise SettingsError(f"API keys file {path} cannot be read as JSON: {error}") from None
        if not isinstance(raw, dict) or not raw:
            raise SettingsError(f"API keys file {path} must hold a JSON object of keys")
        keys = {}
        for secret, entry in raw.items():
            if len(secret) < 16:
                raise SettingsError(f"API keys file {path}: every key is at least 16 characters long")
            try:
                keys[hashlib.sha256(secret.encode()).hexdigest()] = ApiKey.model_validate(entry)
            except ValidationError as error:
                reason = error.errors()[0]["msg"]
                raise SettingsError(f"API keys file {path}: key {key_id(secret)}: {reason}") from None
        return keys


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
