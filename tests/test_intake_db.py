"""Webhook intake's own psycopg connections (models/intake_db.py): a dropped one costs one 503
and is replaced; a forked child neither uses nor closes its parent's."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlmodel import select

from models import db
from models.delivery import WebhookDelivery

BODY = {"id": 7, "admin_graphql_api_id": "gid://shopify/Return/7"}


@pytest.fixture(autouse=True)
def postgresql(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("intake runs straight on psycopg on PostgreSQL only (SQLite: the engine)")


def recorded() -> list[str]:
    with db.session() as s:
        return sorted(s.exec(select(WebhookDelivery.delivery_id)).all())


def test_a_connection_the_database_dropped_fails_one_webhook_with_503_then_is_replaced(
        app, post_webhook):
    assert post_webhook("returns/reopen", BODY, webhook_id="first").status_code == 200
    with db.engine().connect() as connection:  # every other session of this test's database
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    db.engine().dispose()  # the test's own connections went too; intake's are kept
    down = post_webhook("returns/reopen", BODY, webhook_id="second")
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"
    assert post_webhook("returns/reopen", BODY, webhook_id="second").status_code == 200
    assert recorded() == ["first", "second"]


def test_a_forked_child_neither_uses_nor_closes_its_parents_intake_connection(app, post_webhook):
    assert post_webhook("returns/reopen", BODY, webhook_id="parent-1").status_code == 200
    child = os.fork()
    if child == 0:  # the child: its own connection, then disposes of everything it has
        ok = False
        try:
            ok = post_webhook("returns/reopen", BODY, webhook_id="child").status_code == 200
            db.dispose(close=False)  # the pools as a forked child should: its own closed
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # Closing the parent's connection in the child would have ended the parent's session.
    assert post_webhook("returns/reopen", BODY, webhook_id="parent-2").status_code == 200
    assert recorded() == ["child", "parent-1", "parent-2"]


def test_a_connection_idle_too_long_is_replaced_before_use_so_its_drop_costs_no_503(
        app, post_webhook, monkeypatch):
    """A NAT, a proxy or the server's idle timeout drops connections nobody used for a while:
    one idle longer than IDLE_SECONDS is closed, not tried."""
    from models import intake_db

    assert post_webhook("returns/reopen", BODY, webhook_id="first").status_code == 200
    with db.engine().connect() as connection:  # the quiet spell's drop
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    db.engine().dispose()
    later = intake_db.clock() + intake_db.IDLE_SECONDS + 1
    monkeypatch.setattr(intake_db, "clock", lambda: later)
    assert post_webhook("returns/reopen", BODY, webhook_id="second").status_code == 200
    assert recorded() == ["first", "second"]
