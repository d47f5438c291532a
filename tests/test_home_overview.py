"""App Home's overview: one shop's numbers only, and the checklist until setup is done."""
from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from jobs.exchange_rules import STATES
from models import db, exchange_stats
from models.exchange import Exchange
from models.types import utcnow
from tests.conftest import OTHER_SHOP, SHOP

NOW = datetime(2024, 5, 14, 15, 0, tzinfo=UTC)
EMPTY_TEXT = ("No exchanges yet. They appear when a return with an exchange is approved in "
              "Shopify.")


def setup_done(**overrides) -> dict:
    """Every checklist step done, as the settings page and the first webhook would leave it."""
    return {"connection_ok_at": utcnow(), "warehouse_id": 1, "order_status_open": 200,
            "order_status_returned": 210, "order_status_released": 300, "order_status_sent": 450,
            "return_status_notified": 100, "return_status_returned": 400,
            "webhook_token": "w" * 32, "first_ongoing_webhook_at": utcnow()} | overrides


@pytest.fixture
def make_exchange(app):
    """An exchange row for a shop, any field overridable; returns its id."""
    counter = itertools.count(1)

    def make(domain: str = SHOP, **fields) -> int:
        n = next(counter)
        values = {"return_gid": f"gid://shopify/Return/{n}", "return_name": f"#100{n}-R1",
                  "order_gid": f"gid://shopify/Order/{n}", "order_name": f"#100{n}",
                  "state": "detected"} | fields
        with db.session() as s:
            exchange = Exchange(shop_domain=domain, **values)
            s.add(exchange)
            s.flush()
            return exchange.id

    return make


@pytest.fixture
def home(client, session_token):
    """The home page's HTML as the shop's embedded document load gets it."""

    def get(shop: str = SHOP) -> str:
        response = client.get("/", headers={"Authorization": f"Bearer {session_token(shop)}"})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    return get


def test_state_counts_include_every_state_and_only_this_shop(make_exchange):
    make_exchange(state="parked")
    make_exchange(state="parked")
    make_exchange(state="needs_attention")
    for _ in range(3):
        make_exchange(OTHER_SHOP, state="completed")
    with db.session() as s:
        counts = exchange_stats.state_counts(SHOP, STATES, session=s)
    assert list(counts) == list(STATES) and len(counts) == 7
    assert counts == {state: 0 for state in STATES} | {"parked": 2, "needs_attention": 1}


def test_per_day_covers_14_utc_dates_with_zero_days(make_exchange):
    make_exchange(created_at=NOW)
    make_exchange(created_at=datetime(2024, 5, 13, 0, 0, 1, tzinfo=UTC))
    make_exchange(created_at=datetime(2024, 5, 13, 23, 59, tzinfo=UTC))
    make_exchange(created_at=datetime(2024, 5, 1, 0, 0, tzinfo=UTC))  # the first day shown
    make_exchange(created_at=datetime(2024, 4, 30, 23, 59, tzinfo=UTC))  # one day too old
    make_exchange(OTHER_SHOP, created_at=NOW)
    with db.session() as s:
        days = exchange_stats.per_day(SHOP, session=s, now=NOW)
    assert [day for day, _ in days] == [date(2024, 5, 1) + timedelta(days=n) for n in range(14)]
    assert dict(days) == {day: 0 for day, _ in days} | {
        date(2024, 5, 1): 1, date(2024, 5, 13): 2, date(2024, 5, 14): 1}


def test_median_hours_from_release_to_sent_over_30_days(make_exchange):
    for hours in (2, 5.2, 10):
        make_exchange(released_at=NOW - timedelta(days=2),
                      sent_at=NOW - timedelta(days=2) + timedelta(hours=hours))
    make_exchange(released_at=NOW - timedelta(days=45),  # sent too long ago
                  sent_at=NOW - timedelta(days=40))
    make_exchange(released_at=NOW - timedelta(hours=1))  # not sent yet
    make_exchange(OTHER_SHOP, released_at=NOW - timedelta(hours=2),
                  sent_at=NOW - timedelta(hours=1))
    with db.session() as s:
        assert exchange_stats.median_hours_to_sent(SHOP, session=s, now=NOW) == \
            pytest.approx(5.2)
        assert exchange_stats.median_hours_to_sent("gamma.myshopify.com", session=s,
                                                   now=NOW) is None


def test_needs_attention_is_newest_first_capped_and_scoped(make_exchange):
    ids = [make_exchange(state="needs_attention", created_at=NOW - timedelta(hours=n))
           for n in range(22)]
    make_exchange(state="parked", created_at=NOW)
    theirs = make_exchange(OTHER_SHOP, state="needs_attention", created_at=NOW)
    with db.session() as s:
        rows = exchange_stats.newest_in_state(SHOP, "needs_attention", session=s)
    assert [row.id for row in rows] == ids[:20]
    assert theirs not in {row.id for row in rows}


def test_home_shows_the_checklist_until_setup_is_done(make_shop, home, monkeypatch):
    make_shop(SHOP, **setup_done(first_ongoing_webhook_at=None))
    monkeypatch.setattr(exchange_stats, "overview",
                        lambda *a, **k: pytest.fail("stats computed for the checklist"))
    page = home()
    assert 'data-testid="checklist"' in page and "4 of 5 steps done." in page
    assert 'data-testid="overview"' not in page


def test_home_shows_the_overview_once_setup_is_done(make_shop, make_exchange, home):
    make_shop(SHOP, **setup_done())
    make_exchange(state="parked", created_at=utcnow())
    stuck = make_exchange(state="needs_attention", created_at=utcnow(), order_name="#2001",
                          attention_reason="Only 0 of TEE-M sellable in Ongoing.")
    make_exchange(OTHER_SHOP, state="needs_attention", order_name="#9999",
                  attention_reason="Theirs, not ours.")
    page = home()
    assert 'data-testid="overview"' in page and 'data-testid="checklist"' not in page
    for state in STATES:
        assert f'href="/exchanges?state={state}" hx-boost="true"' in page
    counts = dict(re.findall(r'data-state="(\w+)">\s*<span class="stat-count">(\d+)<', page))
    assert counts == {state: "0" for state in STATES} | {"parked": "1", "needs_attention": "1"}
    row = re.search(rf'<li data-testid="attention-row" data-id="{stuck}">.*?</li>', page,
                    re.S).group(0)
    assert "Only 0 of TEE-M sellable in Ongoing." in row
    assert f'href="/exchanges/{stuck}"' in row
    assert re.search(rf'<form hx-post="/exchanges/{stuck}/retry" hx-target="closest li" '
                     r'hx-swap="delete"[^>]*>\s*<button type="submit"[^>]*>Retry', row)
    assert "#9999" not in page and "Theirs, not ours." not in page
    assert 'id="exchange-message"' in page  # where Retry's out-of-band message lands


def test_the_chart_has_a_bar_per_day_and_states_its_numbers(make_shop, make_exchange, home):
    make_shop(SHOP, **setup_done())
    now = utcnow()
    make_exchange(state="completed", created_at=now, released_at=now - timedelta(hours=3),
                  sent_at=now - timedelta(hours=1))
    make_exchange(state="parked", created_at=now)
    page = home()
    svg = re.search(r'<svg class="bar-chart"[^>]*>.*?</svg>', page, re.S).group(0)
    assert 'role="img"' in svg
    label = re.search(r'aria-label="([^"]+)"', svg).group(1)
    today = now.date()
    assert label.startswith(f"Exchanges per day from {today - timedelta(days=13)} to {today}:")
    assert f"{today.strftime('%b')} {today.day}: 2." in label and "Most in one day: 2." in label
    assert f"<title>{label}</title>" in svg
    assert re.findall(r'data-count="(\d+)"', svg) == ["0"] * 13 + ["2"]
    assert len(re.findall(r'<rect class="bar"', svg)) == 14
    assert "Median time from return close to parcel sent: 2.0 h" in page


def test_empty_overview_says_what_happens_next(make_shop, home):
    make_shop(SHOP, **setup_done())
    page = home()
    assert EMPTY_TEXT in page and "<svg" not in page
    assert 'data-testid="empty-sandbox"' not in page


def test_empty_overview_in_sandbox_points_at_the_sample(app, make_shop, home, monkeypatch):
    sandboxed = dataclasses.replace(app.config["SETTINGS"], sandbox=True)
    monkeypatch.setitem(app.config, "SETTINGS", sandboxed)
    make_shop(SHOP, **setup_done())
    page = home()
    assert EMPTY_TEXT in page and "Run a sample exchange</strong>" in page
    assert 'data-testid="run-sample"' in page  # the Try it card stays


def test_nothing_sent_yet_and_nothing_needing_attention(make_shop, make_exchange, home):
    make_shop(SHOP, **setup_done())
    make_exchange(state="parked", created_at=utcnow())
    page = home()
    assert "Median time from return close to parcel sent: no parcels sent yet" in page
    assert 'data-testid="attention-empty"' in page and "attention-row" not in page
