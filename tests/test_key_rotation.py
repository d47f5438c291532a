"""Fernet key rotation: lazy re-encryption on read, `flask rotate-keys`, no plaintext at rest."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlmodel import select

from app import create_app
from clients.shopify_tokens import access_token
from models import crypto, db, migrate
from models.settings import ShopSettings, apply, settings_for
from models.shop import Shop, get_shop
from models.types import utcnow
from tests.conftest import OTHER_SHOP, SHOP

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))
SECRETS = {"password": "pw-Quokka-7781", "webhook_token": "wt-Narwhal-5512",
           "events_secret": "es-Axolotl-9034"}


@contextmanager
def keyed(base_config, keys: str, **overrides):
    """An app (own engine) on the same database, with SWAPLINE_ENCRYPTION_KEYS=keys."""
    application = create_app({**base_config, "SWAPLINE_ENCRYPTION_KEYS": keys, **overrides})
    with application.app_context():
        try:
            yield application
        finally:
            db.dispose()


def store_shop(domain: str = SHOP, access: str = "shpat_fake", refresh: str = "shprt_fake",
               **secrets) -> None:
    """A shop with a token pair and settings secrets, encrypted with the current app's keys."""
    with db.session() as s:
        shop = Shop(domain=domain, name=domain.split(".")[0], installed_at=utcnow(),
                    access_token_enc=crypto.encrypt(access),
                    refresh_token_enc=crypto.encrypt(refresh))
        s.add(shop)
        s.flush()
        apply(settings_for(shop, session=s), secrets)


def raw_rows() -> dict:
    """Every stored ciphertext, by (table, row id)."""
    with db.session() as s:
        shops = {("shop", r.id): (r.access_token_enc, r.refresh_token_enc)
                 for r in s.exec(select(Shop))}
        settings = {("shop_settings", r.id): (r.ongoing_password_enc, r.webhook_token_enc,
                                              r.events_secret_enc)
                    for r in s.exec(select(ShopSettings))}
    return shops | settings


def only(key: str, token: str) -> str:
    """Decrypt with one key alone (InvalidToken when another key made the token)."""
    return Fernet(key).decrypt(token.encode()).decode()


def rotate_keys(application):
    return application.test_cli_runner().invoke(args=["rotate-keys"])


def test_reads_under_old_key_work_and_re_encrypt_lazily(app, base_config):
    with keyed(base_config, KEY_A):
        store_shop(**SECRETS)
    with keyed(base_config, f"{KEY_B},{KEY_A}"):
        assert access_token(SHOP) == "shpat_fake"
        with db.session() as s:  # an attached row: its reads rewrite it in this session
            row = settings_for(get_shop(SHOP, session=s), session=s)
            assert (row.password(), row.webhook_token(), row.events_secret()) == (
                SECRETS["password"], SECRETS["webhook_token"], SECRETS["events_secret"])
        shop_values, settings_values = raw_rows().values()
    access_enc, refresh_enc = shop_values
    assert only(KEY_B, access_enc) == "shpat_fake"
    assert [only(KEY_B, value) for value in settings_values] == list(SECRETS.values())
    with pytest.raises(InvalidToken):  # not read yet: still under A, for rotate-keys
        only(KEY_B, refresh_enc)


def test_a_detached_read_re_encrypts_in_its_own_transaction(app, base_config):
    """Webhook intake and jobs read settings detached from any session (settings_of)."""
    from models.settings import settings_of

    with keyed(base_config, KEY_A):
        store_shop(**SECRETS)
    with keyed(base_config, f"{KEY_B},{KEY_A}"):
        row = settings_of(SHOP)
        assert row.webhook_token() == SECRETS["webhook_token"]
        assert only(KEY_B, row.webhook_token_enc) == SECRETS["webhook_token"]  # this copy too
        assert row.webhook_token() == SECRETS["webhook_token"]  # read again: nothing to swap
        _, settings_values = raw_rows().values()
    password_enc, token_enc, _ = settings_values
    assert only(KEY_B, token_enc) == SECRETS["webhook_token"]
    with pytest.raises(InvalidToken):  # not read: left for the next read or rotate-keys
        only(KEY_B, password_enc)


def test_a_detached_read_never_puts_back_a_secret_saved_meanwhile(app, base_config):
    from models.settings import settings_of

    with keyed(base_config, KEY_A):
        store_shop(**SECRETS)
    with keyed(base_config, f"{KEY_B},{KEY_A}"):
        stale = settings_of(SHOP)  # read before the merchant saves a new token
        with db.session() as s:
            apply(settings_for(get_shop(SHOP, session=s), session=s),
                  {"webhook_token": "wt-New-1234"})
        assert stale.webhook_token() == SECRETS["webhook_token"]  # what this copy held
        assert settings_of(SHOP).webhook_token() == "wt-New-1234"  # the store kept the new one


def test_rotate_keys_re_encrypts_every_row(app, base_config):
    with keyed(base_config, KEY_A):
        store_shop(**SECRETS)
        store_shop(OTHER_SHOP, access="shpat_other", refresh="shprt_other", password="pw-2")
    with keyed(base_config, f"{KEY_B},{KEY_A}") as rotating:
        result = rotate_keys(rotating)
        assert result.exit_code == 0, result.output
        assert "re-encrypted 8 values" in result.output
        again = rotate_keys(rotating)
        assert "re-encrypted 0 values" in again.output and "(8 already current)" in again.output
    with keyed(base_config, KEY_B):  # the old key is gone: everything still reads
        assert access_token(SHOP) == "shpat_fake"
        assert access_token(OTHER_SHOP) == "shpat_other"
        with db.session() as s:
            shop = get_shop(SHOP, session=s)
            assert crypto.decrypt(shop.refresh_token_enc) == "shprt_fake"
            row = settings_for(shop, session=s)
            assert [row.password(), row.webhook_token(), row.events_secret()] == list(
                SECRETS.values())
            other = settings_for(get_shop(OTHER_SHOP, session=s), session=s)
            assert other.password() == "pw-2" and other.webhook_token() is None


def test_rotate_keys_refuses_a_value_no_key_reads_and_changes_nothing(app, base_config):
    with keyed(base_config, KEY_A):
        store_shop(**SECRETS)
        store_shop(OTHER_SHOP)
        with db.session() as s:  # written under a key that is no longer configured
            other = get_shop(OTHER_SHOP, session=s)
            other.refresh_token_enc = Fernet(KEY_C).encrypt(b"shprt_lost").decode()
            other_id = other.id
        before = raw_rows()
    with keyed(base_config, f"{KEY_B},{KEY_A}") as rotating:
        result = rotate_keys(rotating)
        assert result.exit_code == 1
        assert f"shop.refresh_token_enc of row id {other_id}" in result.output
        assert "shprt_lost" not in result.output
        assert raw_rows() == before


def test_no_secret_is_stored_in_plaintext_in_the_sqlite_file(tmp_path, base_config, migrated):
    path = tmp_path / "secrets.db"
    url = f"sqlite:///{path}"
    engine = db.engine_for(url)
    migrate.upgrade(engine)
    engine.dispose()
    plain = ["shpat_Pangolin-4417", "shprt_Okapi-2290", *SECRETS.values()]
    with keyed(base_config, KEY_A, DATABASE_URL=url):
        store_shop(access=plain[0], refresh=plain[1], ongoing_username="WSI-Tapir-visible",
                   **SECRETS)
        assert access_token(SHOP) == plain[0]
    raw = b"".join(Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm")
                   if Path(f"{path}{suffix}").exists())
    assert b"WSI-Tapir-visible" in raw  # the search does see what is stored in clear
    for secret in plain:
        assert secret.encode() not in raw, secret


def test_the_ongoing_webhook_reads_a_token_under_an_old_key_and_re_encrypts_it(app, base_config):
    import json

    with keyed(base_config, KEY_A):
        store_shop(**SECRETS)
        with db.session() as s:
            key = s.exec(select(ShopSettings)).one().webhook_key
    with keyed(base_config, f"{KEY_B},{KEY_A}") as application:
        body = json.dumps({"webhookEventId": 1, "orderId": 999, "orderNumber": "X-1"})
        client = application.test_client()
        answer = client.post(f"/webhooks/ongoing/{key}", data=body,
                             headers={"X-Auth-Token": SECRETS["webhook_token"]})
        assert answer.status_code == 200 and answer.get_json() == {"status": "ignored"}
        wrong = client.post(f"/webhooks/ongoing/{key}", data=body,
                            headers={"X-Auth-Token": "wt-wrong"})
        assert wrong.status_code == 401
        _, settings_values = raw_rows().values()
    assert only(KEY_B, settings_values[1]) == SECRETS["webhook_token"]


def test_a_token_of_the_newest_key_is_opened_once_per_process(app, monkeypatch):
    """Every Ongoing notice opens its shop's webhook token: the second read is the first's."""
    opened = []
    decrypt = Fernet.decrypt
    monkeypatch.setattr(Fernet, "decrypt", lambda self, token, *a: opened.append(token)
                        or decrypt(self, token, *a))
    with app.app_context():
        token = crypto.encrypt("webhook-token")
        assert crypto.decrypt_current(token) == ("webhook-token", None)
        assert crypto.decrypt_current(token) == ("webhook-token", None)
        other = crypto.encrypt("webhook-token")  # the same text saved again: another token
        assert crypto.decrypt_current(other) == ("webhook-token", None)
    assert len(opened) == 2
