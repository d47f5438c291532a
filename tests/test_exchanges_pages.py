"""Exchanges pages: the ordered, filtered list; the detail with its live status; the buttons."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from models import db
from models.exchange import Exchange, record
from models.exchange_signal import ExchangeSignal
from models.types import utcnow
from tests.conftest import OTHER_SHOP, SHOP

ALL_ROUTES = [("GET", ""), ("GET", "/status"), ("POST", "/retry"), ("POST", "/release"),
              ("POST", "/in-transit"), ("POST", "/cancel")]


@pytest.fixture
def make_exchange(app):
    """An exchange row (with an optional timeline) for a shop; returns its id."""
    counter = iter(range(1, 10_000))

    def make(domain: str = SHOP, *, events: tuple = (), age: timedelta = timedelta(hours=1),
             touched: timedelta = timedelta(0), **fields) -> int:
        n = next(counter)
        values = {"return_gid": f"gid://shopify/Return/{n}", "return_name": f"#100{n}-R1",
                  "order_gid": f"gid://shopify/Order/{n}", "order_name": f"#100{n}",
                  "state": "detected",
                  "items": [{"sku": "TEE-M", "quantity": 1, "price": "25.00", "title": "Tee M"}],
                  "returned_items": [{"sku": "TEE-S", "quantity": 1}],
                  "created_at": utcnow() - age, "updated_at": utcnow() - touched} | fields
        with db.session() as s:
            exchange = Exchange(shop_domain=domain, **values)
            s.add(exchange)
            s.flush()
            for kind, name, outcome, *source in events:
                record(exchange.id, kind, name, outcome, session=s,
                       **({"source": source[0]} if source else {}))
            return exchange.id

    return make


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="exchange-row" data-id="(\d+)"', html)]


def status_block(html: str) -> str:
    """The opening tag of the status block."""
    return re.search(r'<div id="exchange-status"[^>]*>', html).group(0)


def button_ids(html: str) -> set[str]:
    return set(re.findall(r'<button type="submit" id="exchange-([a-z-]+)"', html))


def test_list_puts_needs_attention_first_then_open_then_done(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    make_shop(OTHER_SHOP)
    done = make_exchange(state="completed", touched=timedelta(0))
    parked_old = make_exchange(state="parked", touched=timedelta(hours=5))
    parked_new = make_exchange(state="parked", touched=timedelta(minutes=1))
    cancelled = make_exchange(state="cancelled", touched=timedelta(days=3))
    stuck = make_exchange(state="needs_attention", touched=timedelta(days=9),
                          attention_reason="Only 0 of TEE-M sellable in Ongoing.")
    theirs = make_exchange(OTHER_SHOP, state="needs_attention")

    response = htmx("GET", "/exchanges")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert '<section class="card" id="exchange-list"' in html and "<html" not in html
    assert row_ids(html) == [stuck, parked_new, parked_old, done, cancelled]
    assert theirs not in row_ids(html)
    assert "Only 0 of TEE-M sellable in Ongoing." in html
    assert f'href="/exchanges/{stuck}" hx-boost="true"' in html


def test_list_shows_order_return_state_and_age(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    make_exchange(state="parked", age=timedelta(hours=3, minutes=10), order_name="#2001",
                  return_name="#2001-R1")
    make_exchange(state="released", age=timedelta(days=2, hours=5))
    make_exchange(state="detected", age=timedelta(minutes=12))
    html = htmx("GET", "/exchanges").get_data(as_text=True)
    assert ">#2001</a>" in html and "<td>#2001-R1</td>" in html
    assert ">Parked in Ongoing</span>" in html and ">Released to the warehouse</span>" in html
    assert ">3 h</time>" in html and ">2 d</time>" in html and ">12 min</time>" in html


def test_filter_by_state_with_links_and_unknown_state_shows_all(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    stuck = make_exchange(state="needs_attention", attention_reason="Ongoing said no.")
    parked = make_exchange(state="parked")
    done = make_exchange(state="completed")

    html = htmx("GET", "/exchanges?state=needs_attention").get_data(as_text=True)
    assert row_ids(html) == [stuck]
    assert re.search(r'href="/exchanges\?state=needs_attention"[^>]*aria-current="page"', html)
    assert "Needs attention (1)" in html and "Parked in Ongoing (1)" in html and "All (3)" in html
    assert row_ids(htmx("GET", "/exchanges?state=completed").get_data(as_text=True)) == [done]
    everything = htmx("GET", "/exchanges?state=bogus").get_data(as_text=True)
    assert row_ids(everything) == [stuck, parked, done]
    assert re.search(r'href="/exchanges"[^>]*aria-current="page"', everything)


def test_empty_states_say_what_happens_next(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    make_exchange(OTHER_SHOP, state="parked")  # another shop's exchanges never count
    response = htmx("GET", "/exchanges", boosted=True)
    page = response.get_data(as_text=True)
    assert "<h1>Exchanges</h1>" in page and 'data-testid="exchange-row"' not in page
    assert "No exchanges yet. They appear when a return with an exchange is approved in " \
           "Shopify." in page
    make_exchange(state="parked")
    filtered = htmx("GET", "/exchanges?state=cancelled").get_data(as_text=True)
    assert "No exchanges are in “Cancelled” right now." in filtered


def test_list_is_capped(make_shop, make_exchange, htmx, monkeypatch):
    from blueprints import exchanges

    make_shop(SHOP)
    monkeypatch.setattr(exchanges, "LIST_LIMIT", 2)
    for _ in range(3):
        make_exchange(state="parked")
    html = htmx("GET", "/exchanges").get_data(as_text=True)
    assert len(row_ids(html)) == 2 and "Showing 2 of 3." in html


def test_detail_shows_ids_tracking_items_money_and_timeline(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    exchange_id = make_exchange(
        state="completed", order_name="#1042", return_name="#1042-R1",
        ongoing_order_id=987, ongoing_order_number="SWAP-1042-1", ongoing_return_order_id=654,
        fulfillment_order_gid="gid://shopify/FulfillmentOrder/11",
        hold_gid="gid://shopify/FulfillmentHold/22",
        fulfillment_gid="gid://shopify/Fulfillment/33", tracking_number="00340434161094042557",
        tracking_url="https://track.example/00340434161094042557", tracking_company="DHL",
        balance="10.00", currency="EUR", collection="invoice",
        events=(("transition", "detected → parked", "create: Ongoing order 987", "returns/approve"),
                ("call", "Shopify fulfillmentCreate", "tracking 00340434161094042557"),
                ("transition", "fulfilled → completed", "invoice sent: awaiting payment")))

    response = htmx("GET", f"/exchanges/{exchange_id}", boosted=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<h1>Exchange for order #1042</h1>" in page
    for text in ("SWAP-1042-1", "<code>987</code>", "<code>654</code>",
                 "gid://shopify/FulfillmentOrder/11", "gid://shopify/FulfillmentHold/22",
                 "gid://shopify/Fulfillment/33", "#1042-R1", "DHL", "10.00 EUR",
                 "Awaiting payment", "<td>TEE-M</td>", "<td>TEE-S</td>", "25.00 EUR"):
        assert text in page, text
    assert '<a href="https://track.example/00340434161094042557" target="_blank"' in page
    timeline = re.search(r'data-testid="timeline">(.*?)</ol>', page, re.S).group(1)
    assert timeline.index("fulfilled → completed") < timeline.index("detected → parked")
    assert "create: Ongoing order 987" in timeline and "(returns/approve)" in timeline


def test_detail_needs_attention_shows_the_reason(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    exchange_id = make_exchange(state="needs_attention",
                                attention_reason="Ongoing refused the order: unknown article.")
    html = htmx("GET", f"/exchanges/{exchange_id}").get_data(as_text=True)
    assert 'data-testid="attention"><strong>What went wrong:</strong> Ongoing refused the ' \
           'order: unknown article.</div>' in html
    assert "<html" not in html  # htmx and not boosted: the status partial alone


def test_a_tracking_url_that_is_not_http_is_not_linked(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    exchange_id = make_exchange(state="fulfilled", tracking_number="T1",
                                tracking_url="javascript:alert(1)")
    html = htmx("GET", f"/exchanges/{exchange_id}/status").get_data(as_text=True)
    assert "javascript:" not in html and "<dd>T1</dd>" in html


@pytest.mark.parametrize("state", ["detected", "parked", "released", "fulfilled",
                                   "needs_attention"])
def test_status_polls_while_the_exchange_can_move(make_shop, make_exchange, htmx, state):
    make_shop(SHOP)
    exchange_id = make_exchange(state=state)
    for path in (f"/exchanges/{exchange_id}", f"/exchanges/{exchange_id}/status"):
        tag = status_block(htmx("GET", path).get_data(as_text=True))
        assert f'hx-get="/exchanges/{exchange_id}/status?v=' in tag
        assert 'hx-trigger="every 2s"' in tag and 'hx-swap="outerHTML"' in tag


@pytest.mark.parametrize("state", ["completed", "cancelled"])
def test_status_stops_polling_once_done(make_shop, make_exchange, htmx, state):
    make_shop(SHOP)
    exchange_id = make_exchange(state=state)
    for path in (f"/exchanges/{exchange_id}", f"/exchanges/{exchange_id}/status"):
        tag = status_block(htmx("GET", path).get_data(as_text=True))
        assert "hx-get" not in tag and "hx-trigger" not in tag and 'data-polling="no"' in tag


def test_status_answers_204_until_the_exchange_changes(make_shop, make_exchange, htmx):
    make_shop(SHOP)
    exchange_id = make_exchange(state="parked")
    tag = status_block(htmx("GET", f"/exchanges/{exchange_id}").get_data(as_text=True))
    poll = re.search(r'hx-get="([^"]+)"', tag).group(1)
    assert htmx("GET", poll).status_code == 204
    with db.session() as s:
        record(exchange_id, "transition", "parked → released", "release: ok", session=s)
    changed = htmx("GET", poll)
    assert changed.status_code == 200 and "parked → released" in changed.get_data(as_text=True)


@pytest.mark.parametrize(("state", "action", "event", "banner"), [
    ("needs_attention", "retry", "retry", "Retry queued."),
    ("parked", "release", "release", "Release queued."),
    ("parked", "in-transit", "in_transit", "Marked in transit: release queued."),
    ("released", "cancel", "cancel", "Cancellation queued."),
    ("needs_attention", "cancel", "cancel", "Cancellation queued."),
])
def test_each_button_queues_exactly_one_job(make_shop, make_exchange, htmx, queued, state,
                                            action, event, banner):
    make_shop(SHOP, instant_exchange=True)
    exchange_id = make_exchange(state=state)
    response = htmx("POST", f"/exchanges/{exchange_id}/{action}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and banner in html
    assert 'id="exchange-message" hx-swap-oob="innerHTML"' in html
    assert 'id="exchange-status"' in html
    ids = queued()
    assert len(ids) == 1 and ids[0].startswith(f"exchange-{exchange_id}-{event}-")


def test_a_button_records_who_pressed_it(make_shop, make_exchange, htmx, queued, app):
    from jobs.queue import jobs

    make_shop(SHOP)
    exchange_id = make_exchange(state="parked")
    htmx("POST", f"/exchanges/{exchange_id}/release")
    job = jobs().queue.fetch_job(queued()[0])
    assert job.args[:3] == (exchange_id, "release", "merchant: Release now")
    with db.session() as s:  # and the recorded signal says the same
        [row] = s.exec(select(ExchangeSignal)).all()
    assert (row.id, row.event, row.source) == (job.args[3], "release", "merchant: Release now")


@pytest.mark.parametrize(("state", "instant", "attention_step", "shown"), [
    ("needs_attention", True, "detected:create", {"retry", "cancel"}),
    ("needs_attention", True, "released:sent", {"retry"}),  # it was sent: no cancelling
    ("needs_attention", True, "fulfilled:collect", {"retry"}),
    ("detected", True, None, {"release", "in-transit", "cancel"}),
    ("parked", True, None, {"release", "in-transit", "cancel"}),
    ("parked", False, None, {"release", "cancel"}),  # in transit releases only when Instant
    ("released", True, None, {"cancel"}),
    ("fulfilled", True, None, set()),
    ("completed", True, None, set()),
    ("cancelled", True, None, set()),
])
def test_buttons_are_offered_only_where_they_apply(make_shop, make_exchange, htmx, state,
                                                   instant, attention_step, shown):
    make_shop(SHOP, instant_exchange=instant)
    exchange_id = make_exchange(state=state, attention_step=attention_step)
    html = htmx("GET", f"/exchanges/{exchange_id}/status").get_data(as_text=True)
    assert button_ids(html) == shown
    if "cancel" in shown:
        assert re.search(r'hx-confirm="Cancel this exchange\?[^"]*">\s*<button', html)


@pytest.mark.parametrize(("method", "suffix"), ALL_ROUTES)
def test_another_shops_exchange_is_not_found(make_shop, make_exchange, htmx, queued, method,
                                             suffix):
    make_shop(SHOP)
    make_shop(OTHER_SHOP, instant_exchange=True)
    theirs = make_exchange(OTHER_SHOP, state="needs_attention")
    response = htmx(method, f"/exchanges/{theirs}{suffix}")
    assert response.status_code == 404 and "needs_attention" not in response.get_data(as_text=True)
    assert htmx(method, f"/exchanges/{theirs + 1000}{suffix}").status_code == 404
    assert queued() == []
    assert htmx(method, f"/exchanges/{theirs}{suffix}", shop=OTHER_SHOP).status_code == 200


def test_queue_down_keeps_the_action_and_says_so(make_shop, make_exchange, htmx, redis_down):
    make_shop(SHOP)
    exchange_id = make_exchange(state="parked")
    response = htmx("POST", f"/exchanges/{exchange_id}/release")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="problem"' in html
    assert "runs by itself" in html and "Release queued." not in html
    with db.session() as s:  # kept in the database: the sweeper queues it once Redis is back
        pending = s.exec(select(ExchangeSignal)).all()
    assert [(p.exchange_id, p.event, p.done_at) for p in pending] == \
        [(exchange_id, "release", None)]


def test_pages_need_a_valid_session_token(make_shop, make_exchange, client, session_token):
    make_shop(SHOP)
    exchange_id = make_exchange(state="parked")
    bad = {"Authorization": f"Bearer {session_token(SHOP, secret='not-the-secret-' + 'x' * 40)}",
           "HX-Request": "true"}
    for method, path in (("GET", "/exchanges"), ("POST", f"/exchanges/{exchange_id}/cancel")):
        response = client.open(path, method=method, headers=bad)
        assert response.status_code == 401
        assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


@pytest.mark.parametrize("fields,warned", [
    ({"tracking_company": "Budbee"}, True),  # not in Shopify's list, no URL from Ongoing
    ({"tracking_company": None}, True),
    ({"tracking_company": "PostNord SE"}, False),  # Shopify builds the link
    ({"tracking_company": "Budbee", "tracking_url": "https://budbee.example/T1"}, False),
])
def test_the_page_says_when_the_customer_gets_no_tracking_link(make_shop, make_exchange, htmx,
                                                               fields, warned):
    make_shop(SHOP)
    exchange_id = make_exchange(state="completed", tracking_number="T1", **fields)
    html = htmx("GET", f"/exchanges/{exchange_id}/status").get_data(as_text=True)
    assert ('data-testid="no-tracking-link"' in html) is warned
    if warned:
        assert "the customer gets the number without a link" in html.lower()
