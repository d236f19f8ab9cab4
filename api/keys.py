"""The API keys file while it is in use: the gate's keys follow the file's
changes (:class:`KeyRing`), and ``kmo-ledger keys`` adds, lists and revokes
entries (:func:`add_key`, :func:`list_keys`, :func:`revoke_key`).

A key added here is stored as ``sha256:<digest>``: its secret is shown once
and kept nowhere. Entries written by hand in API.md's form (the key itself)
stay valid and are left as they are.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.settings import (
    HASHED,
    KEY_ID_DIGITS,
    ApiKey,
    Role,
    Settings,
    SettingsError,
    api_key,
    entry_digest,
    parse_keys,
    read_json,
    read_keys_file,
)
from ledger.storage import private_folder

log = logging.getLogger("kmo_ledger.api")

RECHECK_SECONDS = 1.0
"""How often a server process looks whether the keys file changed: a revoked
key is refused, and a new one let in, at most this long (and a request) later."""

Stamp = tuple[int, int, int, int] | None


def _stamp(path: Path) -> Stamp:
    """What tells a changed file from the one read before: its inode (a file
    replaced whole), modification and change times and size; None if absent."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_ctime_ns, status.st_size


class KeyRing:
    """The keys a server process lets in, read again when the keys file changes.

    The gate asks for :meth:`current` on every request; at most once every
    :data:`RECHECK_SECONDS` that costs one ``stat`` of the file, and a re-read
    when it changed. A file that cannot be used any more (broken JSON, a bad
    entry, gone) leaves the keys read before in place and is logged once, so a
    slip while editing it never locks every caller out; the next good version
    is taken up as usual.
    """

    def __init__(self, path: Path, keys: dict[str, ApiKey], stamp: Stamp, every: float = RECHECK_SECONDS):
        self.path = path
        self._keys = keys
        self._seen = stamp
        self._every = every
        self._next_look = time.monotonic() + every

    @classmethod
    def load(cls, settings: Settings, every: float = RECHECK_SECONDS) -> KeyRing:
        """The keys ``settings`` name (the file is created first if it is the
        default one and missing), followed from now on."""
        stamp = _stamp(settings.keys_file())  # before reading: a change made meanwhile is read again
        return cls(settings.keys_file(), settings.load_keys(), stamp, every)

    def current(self) -> dict[str, ApiKey]:
        """The keys in force, by the SHA-256 hex digest of their secret."""
        now = time.monotonic()
        if now >= self._next_look:
            self._next_look = now + self._every
            self._look()
        return self._keys

    def _look(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            keys = read_keys_file(self.path, empty_allowed=True)
        except SettingsError as error:
            log.warning("%s; the %d keys read before stay in force", error, len(self._keys))
            return
        self._keys = keys


# ------------------------------------------------------------------ kmo-ledger keys


@dataclass(frozen=True)
class KeyEntry:
    """One entry of the keys file as ``kmo-ledger keys`` shows it: never its secret.
    ``stored`` is ``sha256`` for a digest entry, ``plaintext`` for the key itself."""

    key_id: str
    role: Role
    name: str | None
    provider: str | None
    stored: str

    @classmethod
    def of(cls, entry: str, key: ApiKey) -> KeyEntry:
        stored = "sha256" if entry.startswith(HASHED) else "plaintext"
        return cls(entry_digest(entry)[:KEY_ID_DIGITS], key.role, key.name, key.provider, stored)


def list_keys(path: Path) -> list[KeyEntry]:
    """Every key in the file, in the file's order."""
    raw = read_json(path)
    keys = parse_keys(raw, path, empty_allowed=True)
    return [KeyEntry.of(entry, keys[entry_digest(entry)]) for entry in raw]


def add_key(path: Path, role: Role, name: str, provider: str | None = None) -> tuple[str, KeyEntry]:
    """A new random key for ``role``, stored in ``path`` (created if missing) as
    its SHA-256 only. Returns the secret, which exists nowhere else, and its entry."""
    fields: dict[str, Any] = {"role": role, "name": name}
    if provider is not None:
        fields["provider"] = provider
    key = api_key(fields, "the new key")
    secret = secrets.token_urlsafe(32)
    entry = HASHED + hashlib.sha256(secret.encode()).hexdigest()
    private_folder(path.parent)
    with _locked(path):
        raw = _current_content(path)
        raw[entry] = key.model_dump(exclude_none=True)
        _replace(path, raw)
    return secret, KeyEntry.of(entry, key)


def revoke_key(path: Path, key_id: str) -> KeyEntry:
    """Remove the entry whose key id is ``key_id``; :class:`SettingsError` if there is none."""
    with _locked(path):
        raw = read_json(path)
        keys = parse_keys(raw, path, empty_allowed=True)
        for entry in raw:
            if entry_digest(entry)[:KEY_ID_DIGITS] == key_id:
                revoked = KeyEntry.of(entry, keys[entry_digest(entry)])
                del raw[entry]
                _replace(path, raw)
                return revoked
    raise SettingsError(f"no key with id {key_id} in {path} (kmo-ledger keys list shows them)")


def _current_content(path: Path) -> dict[str, Any]:
    """The file's entries as they stand (checked: a broken file is not written over), or none."""
    if not path.exists():
        return {}
    raw = read_json(path)
    parse_keys(raw, path, empty_allowed=True)
    return raw


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """The keys file's folder locked against another ``kmo-ledger keys`` changing
    the file at the same time (one change would be lost)."""
    try:
        descriptor = os.open(path.parent, os.O_RDONLY)
    except FileNotFoundError:
        raise SettingsError(f"API keys file {path} does not exist") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _replace(path: Path, raw: dict[str, Any]) -> None:
    """Write ``raw`` to ``path`` whole or not at all: a temporary file readable
    by its owner only, flushed to disk, then renamed over the old one. A server
    reading the file sees the old version or the new one, never half of it."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)  # mkstemp's already; whatever the umask
            json.dump(raw, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)
