"""Secrets at rest: Fernet with the keys from SWAPLINE_ENCRYPTION_KEYS (newest first)."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

EXTENSION = "swapline.crypto"


class SecretUnreadable(RuntimeError):
    """A stored secret was encrypted with a key that is no longer configured."""


def init_app(app: Flask) -> None:
    """Build the MultiFernet once per app."""
    keys = app.config["SETTINGS"].encryption_keys
    app.extensions[EXTENSION] = MultiFernet([Fernet(k) for k in keys])


def encrypt(plain: str) -> str:
    """Encrypt with the newest key."""
    return current_app.extensions[EXTENSION].encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with whichever configured key made the token."""
    try:
        return current_app.extensions[EXTENSION].decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be read with the configured keys") from None
