"""Offline tokens: exchange, refresh before expiry under a per-shop lock, 401 recovery."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from clients.shopify import shopify
from clients.shopify_errors import ShopifyAuthError, ShopifyRetriableError
from clients.shopify_session import shop_from_claims
from clients.shopify_tokens import access_token, install
from models import crypto, db
from models.shop import get_shop
from models.types import utcnow
from tests.conftest import SHOP


@pytest.fixture
def installed(app, session_token):
    """SHOP with a fresh token pair from the sandbox, via the real exchange."""
    import jwt

    token = session_token()
    claims = jwt.decode(token, options={"verify_signature": False})
    from clients.shopify_session import SessionToken

    install(SessionToken(shop_from_claims(claims), "42", token, claims))
    return SHOP


def _expire_soon(domain: str, minutes: int = 2) -> str:
    with db.session() as s:
        shop = get_shop(domain, session=s)
        shop.access_token_expires_at = utcnow() + timedelta(minutes=minutes)
        return crypto.decrypt(shop.access_token_enc)


def test_valid_token_is_used_without_refresh(installed, sandbox):
    access_token(installed)
    assert sandbox.store.count("refresh", SHOP) == 0


def test_token_within_five_minutes_of_expiry_is_refreshed_and_saved(installed, sandbox):
    old = _expire_soon(installed)
    new = access_token(installed)
    assert new != old and new.startswith("shpat_")
    with db.session() as s:
        shop = get_shop(installed, session=s)
        assert crypto.decrypt(shop.access_token_enc) == new
        assert shop.access_token_expires_at > utcnow() + timedelta(minutes=50)
    assert sandbox.store.count("refresh", SHOP) == 1
    assert shopify().graphql(installed, "ShopDetails")["shop"]["myshopifyDomain"] == SHOP


def test_refresh_race_between_two_workers_refreshes_once(app, installed, sandbox):
    _expire_soon(installed)
    barrier, seen, errors = threading.Barrier(2), [], []

    def worker():
        with app.app_context():
            barrier.wait()
            try:
                seen.append(access_token(installed))
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sandbox.store.count("refresh", SHOP) == 1
    assert len(seen) == 2 and seen[0] == seen[1]


def test_rejected_token_is_refreshed_once_then_call_succeeds(installed, sandbox):
    sandbox.store.expire_access_tokens(SHOP)  # Shopify-side revocation the app cannot see
    data = shopify().graphql(installed, "ShopDetails")
    assert data["shop"]["name"] == "alpha-shop"
    assert sandbox.store.count("refresh", SHOP) == 1


def test_refused_grant_drops_tokens_until_the_app_is_opened_again(installed, sandbox,
                                                                  monkeypatch):
    sandbox.store.expire_access_tokens(SHOP)
    monkeypatch.setattr(sandbox.store, "refresh_tokens", {})
    with pytest.raises(ShopifyAuthError):
        shopify().graphql(installed, "ShopDetails")
    with db.session() as s:
        shop = get_shop(installed, session=s)
        assert shop.access_token_enc is None and shop.refresh_token_enc is None


def test_throttled_graphql_is_retriable(installed, sandbox):
    sandbox.store.throttle_next = 1
    with pytest.raises(ShopifyRetriableError) as info:
        shopify().graphql(installed, "ShopDetails")
    assert info.value.retriable and info.value.code == "THROTTLED"


def test_exchange_refused_for_a_token_of_another_app(app, session_token):
    import jwt

    from clients.shopify_session import SessionToken

    token = session_token(aud="another-app")
    claims = jwt.decode(token, options={"verify_signature": False})
    with pytest.raises(ShopifyAuthError):
        install(SessionToken(SHOP, "42", token, claims))
    with db.session() as s:
        assert get_shop(SHOP, session=s) is None


def test_unknown_shop_has_no_token(app):
    with pytest.raises(ShopifyAuthError, match="no offline token"):
        access_token("nobody.myshopify.com")


def test_two_first_loads_at_once_leave_one_shop_row(app, session_token):
    import jwt
    from sqlmodel import select

    from clients.shopify_session import SessionToken
    from models.shop import Shop

    tokens = [session_token() for _ in range(2)]
    barrier, errors = threading.Barrier(2), []

    def first_load(token):
        claims = jwt.decode(token, options={"verify_signature": False})
        with app.app_context():
            barrier.wait()
            try:
                install(SessionToken(SHOP, "42", token, claims))
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=first_load, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with db.session() as s:
        [shop] = s.exec(select(Shop)).all()
    assert shop.installed and access_token(SHOP).startswith("shpat_")


def _shop_name_twice_dropping_the_row_between(domain: str) -> list[str]:
    """An RQ job: two calls, the shop's stored token dropped in between."""
    first = shopify().graphql(domain, "ShopDetails")["shop"]["name"]
    with db.session() as s:
        get_shop(domain, session=s).access_token_enc = None
    return [first, shopify().graphql(domain, "ShopDetails")["shop"]["name"]]


def _shop_name_twice_revoked_between(domain: str) -> list[str]:
    """An RQ job: two calls, Shopify revoking the token in between."""
    from flask import current_app

    first = shopify().graphql(domain, "ShopDetails")["shop"]["name"]
    current_app.config["TEST_SANDBOX"].store.expire_access_tokens(domain)
    return [first, shopify().graphql(domain, "ShopDetails")["shop"]["name"]]


def _run_as_job(app, func, domain: str):
    from jobs.queue import enqueue
    from jobs.worker import run_burst_in_process

    job = enqueue(func, domain, job_id=f"test-{func.__name__}")
    run_burst_in_process(app)
    job.refresh()
    return job


def test_a_job_reads_the_shops_token_once_for_all_its_calls(app, installed, sandbox):
    job = _run_as_job(app, _shop_name_twice_dropping_the_row_between, installed)
    assert job.return_value() == ["alpha-shop", "alpha-shop"]  # the second call did not re-read
    with pytest.raises(ShopifyAuthError):  # outside a job every call reads the row
        shopify().graphql(installed, "ShopDetails")


def test_a_token_refused_inside_a_job_is_read_again_and_refreshed_once(app, installed, sandbox):
    app.config["TEST_SANDBOX"] = sandbox
    job = _run_as_job(app, _shop_name_twice_revoked_between, installed)
    assert job.return_value() == ["alpha-shop", "alpha-shop"]
    assert sandbox.store.count("refresh", SHOP) == 1


def test_a_token_read_is_one_statement_outside_a_transaction(app, installed):
    from sqlalchemy import event

    seen = []
    autocommit = app.extensions[db.AUTOCOMMIT]

    def statement(conn, _cursor, text, *_args):
        seen.append(("autocommit" if conn.engine is autocommit else "transaction", text))

    engines = [app.extensions[db.EXTENSION], autocommit]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", statement)
    try:
        token = access_token(installed)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", statement)
    assert token.startswith("shpat_")
    assert [where for where, _ in seen] == ["autocommit"]


def test_a_token_under_an_older_key_is_read_and_stored_under_the_newest(app, installed):
    from cryptography.fernet import Fernet, MultiFernet

    with db.session() as s:
        plain = crypto.decrypt(get_shop(installed, session=s).access_token_enc)
    old = Fernet(Fernet.generate_key())
    with db.session() as s:
        get_shop(installed, session=s).access_token_enc = old.encrypt(plain.encode()).decode()
    app.extensions[crypto.EXTENSION] = MultiFernet([app.extensions[crypto.NEWEST], old])
    assert access_token(installed) == plain
    with db.session() as s:
        stored = get_shop(installed, session=s).access_token_enc
    assert app.extensions[crypto.NEWEST].decrypt(stored.encode()).decode() == plain
