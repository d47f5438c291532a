"""A shop's Ongoing connection and exchange settings; secrets encrypted, never read back out."""
from __future__ import annotations

import functools
import secrets
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Text, bindparam, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Field, Session, SQLModel, select

from clients.deps import job_run
from models import crypto, intake_db
from models.exchange import order_names, runs_ongoing_order
from models.plain_sql import execute, first_mapping
from models.rows import unattached
from models.shop import Shop
from models.types import UTCDateTime, utcnow

ORDER_CODES = ("open", "returned", "released", "sent")
# Ongoing's standard order statuses have no Returned; only 3PLs that added one can map it.
OPTIONAL_ORDER_CODES = ("returned",)
RETURN_CODES = ("notified", "returned")
# Alerts: days before an exchange counts as stalled (models/alert.py names the conditions).
STALL_DEFAULTS = {"stall_parked_days": 14, "stall_released_days": 2,
                  "stall_uncollected_days": 1, "stall_not_returned_days": 7}
# Shopify's limits on a tag (live recordings: "Title Tag exceeds the maximum length of 40
# characters"; a comma splits one tag into two).
DEFAULT_EXCHANGE_TAG, EXCHANGE_TAG_MAX = "swapline-exchange", 40
SECRET_COLUMNS = {"password": "ongoing_password_enc", "webhook_token": "webhook_token_enc",
                  "events_secret": "events_secret_enc"}


class ShopSettings(SQLModel, table=True):
    __tablename__ = "shop_settings"

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(sa_column=Column(Integer, ForeignKey("shop.id", ondelete="CASCADE"),
                                          unique=True, nullable=False))
    ongoing_server: str = Field(default="api", max_length=63)
    ongoing_warehouse: str | None = Field(default=None, max_length=100)
    goods_owner_id: int | None = None
    ongoing_username: str | None = Field(default=None, max_length=100)
    ongoing_password_enc: str | None = Field(default=None, sa_column=Column(Text))
    warehouse_id: int | None = None
    warehouse_name: str | None = Field(default=None, max_length=255)
    order_status_open: int | None = None
    order_status_returned: int | None = None
    order_status_released: int | None = None
    order_status_sent: int | None = None
    return_status_notified: int | None = None
    return_status_returned: int | None = None
    webhook_key: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    webhook_token_enc: str | None = Field(default=None, sa_column=Column(Text))
    events_secret_enc: str | None = Field(default=None, sa_column=Column(Text))
    instant_exchange: bool = False
    notify_customer: bool = True
    order_number_prefix: str = Field(default="EXCH", max_length=20)
    # Used only when the original order is not found in Ongoing (else the exchange copies it).
    default_transporter_code: str | None = Field(default=None, max_length=50)
    default_transporter_service_code: str | None = Field(default=None, max_length=50)
    default_way_of_delivery: str | None = Field(default=None, max_length=50)
    alert_emails: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    alert_webhook_url: str | None = Field(default=None, sa_column=Column(Text))
    alert_resolved: bool = False  # also tell when an alerted exchange moves on
    stall_parked_days: int = STALL_DEFAULTS["stall_parked_days"]
    stall_released_days: int = STALL_DEFAULTS["stall_released_days"]
    stall_uncollected_days: int = STALL_DEFAULTS["stall_uncollected_days"]
    stall_not_returned_days: int = STALL_DEFAULTS["stall_not_returned_days"]
    # Put on the Shopify order when an exchange is created: the 3PL's connector skips it.
    exchange_tag: str = Field(default=DEFAULT_EXCHANGE_TAG, max_length=EXCHANGE_TAG_MAX)
    connection_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_ongoing_webhook_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    @property
    def password_set(self) -> bool:
        return self.ongoing_password_enc is not None

    @property
    def webhook_token_set(self) -> bool:
        return self.webhook_token_enc is not None

    @property
    def events_secret_set(self) -> bool:
        return self.events_secret_enc is not None

    def order_statuses(self) -> dict[str, int | None]:
        return {code: getattr(self, f"order_status_{code}") for code in ORDER_CODES}

    def return_statuses(self) -> dict[str, int | None]:
        return {code: getattr(self, f"return_status_{code}") for code in RETURN_CODES}

    def password(self) -> str | None:
        return self._secret("ongoing_password_enc")

    def webhook_token(self) -> str | None:
        return self._secret("webhook_token_enc")

    def events_secret(self) -> str | None:
        return self._secret("events_secret_enc")

    def _secret(self, column: str) -> str | None:
        """Decrypt one secret column; one made with an older key is re-encrypted (lazy rotation).

        A row attached to a session is rewritten in that session (committed with it); a detached
        row (webhook intake, jobs) in a short transaction of its own. Both compare-and-swap, so a
        secret saved meanwhile is never overwritten with the old one.
        """
        token = getattr(self, column)
        plain, rotated = _open(self.id, column, token, session=object_session(self))
        if rotated is not None and object_session(self) is None:
            set_committed_value(self, column, rotated)  # this copy no longer holds the old token
        return plain


def _open(settings_id: int | None, column: str, token: str | None, *,
          session: Session | None) -> tuple[str | None, str | None]:
    """(the secret, its re-encryption when it was made with an older key) of one stored token;
    the re-encryption is saved in `session`, else in a short transaction of its own."""
    if not token:
        return None, None
    plain, rotated = crypto.decrypt_current(token)
    if rotated is None or settings_id is None:
        return plain, None
    if session is not None:
        crypto.swap(ShopSettings, settings_id, column, token, rotated, session=session)
    else:
        from models import db

        with db.session() as own:
            crypto.swap(ShopSettings, settings_id, column, token, rotated, session=own)
    return plain, rotated


class OngoingHook(NamedTuple):
    """What the Ongoing webhook reads of a shop's settings, and whether its notice is ours."""

    settings_id: int
    shop_domain: str
    webhook_token_enc: str | None
    first_ongoing_webhook_at: datetime | None
    ours: bool

    def webhook_token(self) -> str | None:
        return _open(self.settings_id, "webhook_token_enc", self.webhook_token_enc,
                     session=None)[0]


def settings_for(shop: Shop, *, session: Session) -> ShopSettings:
    """The shop's settings row, created (with its random webhook key) on first use."""
    row = session.exec(select(ShopSettings).where(ShopSettings.shop_id == shop.id)).first()
    if row is None:
        row = ShopSettings(shop_id=shop.id, webhook_key=secrets.token_urlsafe(24))
        session.add(row)
        session.flush()
    return row


def by_webhook_key(key: str, *, session: Session) -> tuple[ShopSettings, Shop] | None:
    """Settings and shop behind a webhook key, or None for an unknown key."""
    if not key or len(key) > 64:
        return None
    found = session.exec(select(ShopSettings, Shop).join(Shop, Shop.id == ShopSettings.shop_id)
                         .where(ShopSettings.webhook_key == key)).first()
    return tuple(found) if found else None


def by_ongoing_webhook_key(key: str, order_id: int | None, order_number: str | None, *,
                           open_states: tuple[str, ...]) -> OngoingHook | None:
    """The shop's settings behind a webhook key, as the Ongoing webhook reads them, and
    whether the notice's order is one Swapline runs for that shop: one statement on webhook
    intake's own connection (models/intake_db.py; Core, no ORM); None for an unknown key."""
    if not key or len(key) > 64:
        return None
    names = order_names(order_number) or [None, None]  # NULL names match nothing
    found = intake_db.first(_notice_query(open_states),
                            {"key": key, "order_id": order_id, "name": names[0],
                             "hash_name": names[1]})
    return OngoingHook(*found[:4], bool(found[4])) if found else None


@functools.cache
def _notice_query(open_states: tuple[str, ...]):
    """by_ongoing_webhook_key's statement, built once: only its parameters change."""
    names = [bindparam("name", type_=String), bindparam("hash_name", type_=String)]
    ours = runs_ongoing_order(Shop.domain, bindparam("order_id", type_=Integer), names,
                              open_states=open_states)
    return (select(ShopSettings.id, Shop.domain, ShopSettings.webhook_token_enc,
                   ShopSettings.first_ongoing_webhook_at, ours.label("ours"))
            .join(Shop, Shop.id == ShopSettings.shop_id)
            .where(ShopSettings.webhook_key == bindparam("key")))


def tick_first_ongoing_webhook(settings_id: int, *, connection: Connection) -> bool:
    """The setup checklist's "first Ongoing webhook" step, ticked once (callers skip it when
    the row they read has it): of two concurrent first notices one write counts (the update
    is conditional). Whether this call ticked it."""
    done = connection.execute(update(ShopSettings)
                              .where(ShopSettings.id == settings_id,
                                     ShopSettings.first_ongoing_webhook_at.is_(None))
                              .values(first_ongoing_webhook_at=utcnow()))
    return done.rowcount == 1


def apply(row: ShopSettings, values: dict) -> None:
    """Store validated values; secrets are encrypted, and an empty secret keeps the stored one."""
    for name, value in values.items():
        if name in SECRET_COLUMNS:
            if value:
                setattr(row, SECRET_COLUMNS[name], crypto.encrypt(value))
        else:
            setattr(row, name, value)
    row.updated_at = utcnow()


def public_view(row: ShopSettings, app_url: str) -> dict:
    """Every non-secret setting, plus whether each secret is set (never the secret itself)."""
    return {
        "server": row.ongoing_server, "warehouse": row.ongoing_warehouse,
        "goods_owner_id": row.goods_owner_id, "username": row.ongoing_username,
        "warehouse_id": row.warehouse_id, "warehouse_name": row.warehouse_name,
        "order_statuses": row.order_statuses(), "return_statuses": row.return_statuses(),
        "instant_exchange": row.instant_exchange, "notify_customer": row.notify_customer,
        "order_number_prefix": row.order_number_prefix, "webhook_key": row.webhook_key,
        "default_transporter_code": row.default_transporter_code,
        "default_transporter_service_code": row.default_transporter_service_code,
        "default_way_of_delivery": row.default_way_of_delivery,
        "exchange_tag": row.exchange_tag,
        "ongoing_webhook_url": f"{app_url}/webhooks/ongoing/{row.webhook_key}",
        "return_events_url": f"{app_url}/webhooks/return-events/{row.webhook_key}",
        "alert_emails": list(row.alert_emails or []),
        "alert_webhook_url": row.alert_webhook_url, "alert_resolved": row.alert_resolved,
        **{name: getattr(row, name) for name in STALL_DEFAULTS},
        "password_set": row.password_set, "webhook_token_set": row.webhook_token_set,
        "events_secret_set": row.events_secret_set,
        "connection_ok_at": row.connection_ok_at.isoformat() if row.connection_ok_at else None,
        "first_ongoing_webhook_at": row.first_ongoing_webhook_at.isoformat()
        if row.first_ongoing_webhook_at else None,
    }


def settings_of(domain: str) -> ShopSettings:
    """A shop's settings row (created on first use), detached from its session: one read, by
    the shop's domain, once the row exists. Inside an RQ job the row read is kept for the rest
    of that job run (its steps ask for it up to three times); a merchant's save reaches the next
    job. Outside a job (pages, CLI) every call reads."""
    run = job_run()
    kept = _kept_settings.get(domain)
    if run is not None and kept is not None and kept[0] == run:
        return kept[1]
    row = _read_settings(domain)
    keep_for_job(domain, row, run=run)
    return row


def keep_for_job(domain: str, row: ShopSettings, *, run: tuple | None = None) -> None:
    """A shop's settings row this job read some other way (with the exchange a webhook is
    about): settings_of gives it for the rest of the job run. Outside a job, nothing."""
    run = run or job_run()
    if run is not None:
        _kept_settings.clear()  # one job run's rows only: a worker serves many shops
        _kept_settings[domain] = (run, row)


_kept_settings: dict[str, tuple[tuple, ShopSettings]] = {}


# Built once: the shop's settings row by the shop's domain (settings_of).
_BY_DOMAIN = (select(ShopSettings.__table__)
              .join(Shop.__table__, Shop.__table__.c.id == ShopSettings.__table__.c.shop_id)
              .where(Shop.__table__.c.domain == bindparam("domain")))


def _read_settings(domain: str) -> ShopSettings:
    """One statement on its own (autocommit: no BEGIN and COMMIT around a read), the row built
    as the ORM would load it (models/rows.py); a first use creates the row in a session."""
    from models import db
    from models.shop import get_shop

    with db.autocommit() as connection:
        row = first_mapping(execute(connection, _BY_DOMAIN, {"domain": domain}))
    if row is not None:
        return unattached(ShopSettings, row, persistent=True)
    with db.session() as s:
        row = s.exec(select(ShopSettings).join(Shop, Shop.id == ShopSettings.shop_id)
                     .where(Shop.domain == domain)).first()
        return row if row is not None else settings_for(get_shop(domain, session=s), session=s)
