"""Credentials at rest: OAuth tokens and game server (RCON) passwords sealed with the instance key (``cryptography``'s Fernet:
AES-128-CBC with an HMAC-SHA256, authenticated, timestamped).

The key is ``[security] secret_key`` (or ``QUESTLOG_SECRET_KEY``); without one, a file
``secret.key`` beside the SQLite database, created on first use with mode 0600 and a warning to
back it up with the database. A sealed value the key cannot open (the key file was lost or
replaced) reads as None, logged once per process: its member is then simply not connected, and
a console's password must be set again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from bot.config import Config

KEY_FILE = "secret.key"

log = logging.getLogger(__name__)


def new_key() -> str:
    """A fresh instance key, as ``[security] secret_key`` takes it."""
    return Fernet.generate_key().decode("ascii")


def key_path(config: Config) -> Path:
    """Where the instance key file lives when the config gives no key: beside the database."""
    return Path(config.database.path).expanduser().resolve().parent / KEY_FILE


class Vault:
    def __init__(self, key: str, where: str) -> None:
        self._fernet = Fernet(key.encode("ascii"))
        self.where = where  # "[security] secret_key" or the key file's path, for messages
        self._warned = False

    @classmethod
    def from_config(cls, config: Config) -> Vault:
        """The configured key, else the key file beside the database (created when missing)."""
        if config.security.secret_key:
            return cls(config.security.secret_key, "[security] secret_key")
        path = key_path(config)
        if path.exists():
            return cls(path.read_text(encoding="ascii").strip(), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        key = new_key()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        log.warning(
            "created the instance key %s: it encrypts OAuth tokens and RCON passwords; back"
            " it up with the database (without it, members must connect again and consoles"
            " need their passwords again)",
            path,
        )
        return cls(key, str(path))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """The secret, or None when this key cannot open it (said once, without the value)."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError, UnicodeError):
            if not self._warned:
                self._warned = True
                log.error(
                    "stored credentials cannot be decrypted with the instance key (%s):"
                    " members show as not connected until they connect again, and consoles"
                    " need their RCON passwords set again",
                    self.where,
                )
            return None
