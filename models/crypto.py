"""Secrets at rest: Fernet with the keys from SWAPLINE_ENCRYPTION_KEYS (newest first)."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from sqlalchemy import select, update
from sqlmodel import Session

EXTENSION = "swapline.crypto"
NEWEST = "swapline.crypto.newest"  # the first key alone: tells a current token from an old one
READ = "swapline.crypto.read"  # token -> plain text of tokens of the newest key already read
READ_MAX = 1024


class SecretUnreadable(RuntimeError):
    """A stored secret was encrypted with a key that is no longer configured."""


def init_app(app: Flask) -> None:
    """Build the MultiFernet once per app."""
    keys = app.config["SETTINGS"].encryption_keys
    app.extensions[EXTENSION] = MultiFernet([Fernet(k) for k in keys])
    app.extensions[NEWEST] = Fernet(keys[0])
    app.extensions[READ] = {}


def encrypt(plain: str) -> str:
    """Encrypt with the newest key."""
    return current_app.extensions[EXTENSION].encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with whichever configured key made the token."""
    try:
        return current_app.extensions[EXTENSION].decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be read with the configured keys") from None


def decrypt_current(token: str) -> tuple[str, str | None]:
    """(plain, None) for a token of the newest key; (plain, re-encrypted token) for an older one.

    Key rotation is lazy: the caller stores the second value (see `swap`) so the old key can go.
    """
    read = current_app.extensions[READ]
    plain = read.get(token)
    if plain is not None:
        return plain, None
    try:
        plain = current_app.extensions[NEWEST].decrypt(token.encode()).decode()
    except InvalidToken:
        pass
    else:
        # Kept per process: every Ongoing notice opens its shop's webhook token, and a token
        # (random IV, no expiry checked) always opens to the same text. The plain text is no
        # more exposed than the keys that open it, which this process holds anyway.
        if len(read) >= READ_MAX:
            read.clear()
        read[token] = plain
        return plain, None
    try:
        # rotate() keeps the token's timestamp; it raises when no configured key made the token.
        rotated = current_app.extensions[EXTENSION].rotate(token.encode())
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be read with the configured keys") from None
    return current_app.extensions[NEWEST].decrypt(rotated).decode(), rotated.decode()


def swap(model, row_id: int, column: str, old: str, new: str, *, session: Session) -> bool:
    """Store a re-encrypted value only if the row still holds `old` (compare-and-swap).

    A concurrent writer (a token refresh, a settings save) may have replaced the secret since it
    was read; an unconditional write would put the stale secret back.
    """
    result = session.execute(
        update(model).where(model.id == row_id, getattr(model, column) == old)
        .values({column: new}).execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


def rotate_all(columns: dict[type, tuple[str, ...]]) -> tuple[int, int]:
    """Re-encrypt every value of `columns` ({model: column names}) with the newest key.

    Returns (re-encrypted, already current). Every value is checked before anything is written:
    one no configured key can read raises SecretUnreadable naming table, column and row id (never
    the value), and nothing changes. Then one transaction per table.
    """
    from models import db

    plans, current = [], 0
    with db.session() as s:
        for model, names in columns.items():
            changes = []
            rows = s.execute(select(model.id, *(getattr(model, n) for n in names)))
            for row_id, *tokens in rows:
                for name, token in zip(names, tokens, strict=True):
                    if not token:
                        continue
                    try:
                        _, rotated = decrypt_current(token)
                    except SecretUnreadable:
                        raise SecretUnreadable(
                            f"{model.__table__.name}.{name} of row id {row_id} cannot be "
                            "decrypted with any configured key; nothing was changed") from None
                    if rotated is None:
                        current += 1
                    else:
                        changes.append((row_id, name, token, rotated))
            plans.append((model, changes))
    rewritten = 0
    for model, changes in plans:
        with db.session() as s:
            # A value replaced meanwhile (refresh, settings save) is already under the newest key.
            rewritten += sum(swap(model, *change, session=s) for change in changes)
    return rewritten, current
