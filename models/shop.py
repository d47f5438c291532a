"""A shop that installed Swapline, with its encrypted offline access token pair."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Column, String, Text, bindparam
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, select

from models.plain_sql import execute
from models.types import UTCDateTime, utcnow


class Shop(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(sa_column=Column(String(255), unique=True, nullable=False))
    name: str | None = Field(default=None, max_length=255)
    access_token_enc: str | None = Field(default=None, sa_column=Column(Text))
    access_token_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refresh_token_enc: str | None = Field(default=None, sa_column=Column(Text))
    refresh_token_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    scopes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    installed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    uninstalled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    @property
    def installed(self) -> bool:
        return self.access_token_enc is not None and self.uninstalled_at is None


# Built once (SQLAlchemy caches its compiled form; building it is most of a lookup's Python).
_BY_DOMAIN = select(Shop).where(Shop.domain == bindparam("domain"))


def get_shop(domain: str, *, session: Session) -> Shop | None:
    """The shop row for a myshopify domain, or None."""
    return session.exec(_BY_DOMAIN, params={"domain": domain}).first()


class StoredToken(NamedTuple):
    """What a call to Shopify reads of its shop's row: the access token and its expiry."""

    id: int
    access_token_enc: str | None
    access_token_expires_at: datetime | None
    uninstalled_at: datetime | None

    @property
    def installed(self) -> bool:
        return self.access_token_enc is not None and self.uninstalled_at is None


_TOKEN = select(Shop.__table__.c.id, Shop.__table__.c.access_token_enc,
                Shop.__table__.c.access_token_expires_at, Shop.__table__.c.uninstalled_at) \
    .where(Shop.__table__.c.domain == bindparam("domain"))


def stored_token(domain: str, *, connection: Connection) -> StoredToken | None:
    """The shop's stored access token (still encrypted), or None for an unknown shop: one
    statement of four columns, no ORM object built (each job with a Shopify call reads it)."""
    row = execute(connection, _TOKEN, {"domain": domain}).first()
    return StoredToken(*row) if row is not None else None


def grants(scopes: str, scope: str) -> bool:
    """Whether a stored, comma-separated scope list grants `scope` (write_x includes read_x)."""
    have = {s.strip() for s in scopes.split(",") if s.strip()}
    return scope in have or (scope.startswith("read_") and
                             "write_" + scope.removeprefix("read_") in have)


def shop_grants(domain: str, scope: str, *, session: Session) -> bool:
    """Whether the shop's stored grant (token exchange, refresh, app/scopes_update) has `scope`."""
    shop = get_shop(domain, session=session)
    return shop is not None and grants(shop.scopes, scope)


def forget_tokens(shop: Shop) -> None:
    """Drop every credential of a shop (uninstall): nothing usable stays behind."""
    shop.access_token_enc = None
    shop.access_token_expires_at = None
    shop.refresh_token_enc = None
    shop.refresh_token_expires_at = None
    shop.uninstalled_at = utcnow()
    shop.updated_at = utcnow()
