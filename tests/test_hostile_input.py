"""Hostile input: random bodies, headers and forms never 500, never store unverified, never leak.

Property-based (hypothesis) with a small, derandomized budget. The `app`/`client` fixtures are
function-scoped and shared by every example of a test, so each example counts rows before and after
instead of assuming empty tables.
"""
from __future__ import annotations

import io
import json
import logging
import time
from html import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

import logs
from blueprints.return_events import signature
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange
from models.settings import ShopSettings
from sandbox.shopify import webhook_headers
from tests.conftest import API_SECRET, OTHER_SHOP, SHOP

BUDGET = settings(max_examples=40, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
TOKEN = "ongoing-token-" + "a" * 30
SECRET = "events-secret-" + "b" * 30
ALLOWED = {200, 400, 401, 404, 405, 413}
SIGNATURE_HEADERS = ("X-Shopify-Hmac-Sha256", "X-Auth-Token", "X-Swapline-Signature")
OTHER_HEADERS = ("X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id",
                 "Content-Type", "Content-Encoding", "Transfer-Encoding-X", "X-Random")
FORM_FIELDS = ("ongoing_warehouse", "goods_owner_id", "ongoing_username", "password",
               "ongoing_server", "warehouse_id", "order_status_open", "order_status_returned",
               "order_status_released", "order_status_sent", "return_status_notified",
               "return_status_returned", "webhook_token", "events_secret", "order_number_prefix",
               "instant_exchange", "notify_customer", "default_transporter_code",
               "default_transporter_service_code", "default_way_of_delivery")
TEN_MB = 10 * 1024 * 1024

# Header values arrive as latin-1 text in WSGI; CR/LF cannot be sent at all.
header_value = st.one_of(
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.text(max_size=80).map(lambda t: t.encode("utf-8").decode("latin-1")),
    st.just("A" * 16_000),
).map(lambda v: v.replace("\r", "").replace("\n", ""))
headers_strategy = st.dictionaries(st.sampled_from(SIGNATURE_HEADERS + OTHER_HEADERS),
                                   header_value, max_size=6)
body_strategy = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(max_size=300).map(lambda t: t.encode("latin-1", "ignore")),
    st.just(b"\xff\xfe{\x00}"), st.just(b"{" * 5000),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12)
form_text = st.one_of(st.text(max_size=60), st.just("x" * 5000),
                      st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=20),
                      st.sampled_from(["²", "٣", "-1", "0", "9" * 40, " 12 ", "WSI\x00"]))


def delivery_count() -> int:
    with db.session() as s:
        return s.exec(select(func.count()).select_from(WebhookDelivery)).one()


def settings_snapshot(domain: str = SHOP) -> dict:
    from models.shop import get_shop

    with db.session() as s:
        shop = get_shop(domain, session=s)
        row = s.exec(select(ShopSettings).where(ShopSettings.shop_id == shop.id)).one()
        return row.model_dump()


@pytest.fixture
def keys(make_shop):
    """Webhook keys of two shops, each with its own Ongoing token and events secret."""
    _, key_a = make_shop(SHOP, webhook_token=TOKEN, events_secret=SECRET)
    _, key_b = make_shop(OTHER_SHOP, webhook_token=TOKEN + "b", events_secret=SECRET + "b")
    return {SHOP: key_a, OTHER_SHOP: key_b}


def endpoints(keys: dict) -> list[str]:
    return ["/webhooks/shopify", f"/webhooks/ongoing/{keys[SHOP]}",
            f"/webhooks/return-events/{keys[SHOP]}"]


# --- Webhooks: random bodies and headers -------------------------------------------------------

@pytest.mark.parametrize("endpoint", [0, 1, 2])
@BUDGET
@given(body=body_strategy, headers=headers_strategy,
       method=st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE"]))
def test_unsigned_random_requests_never_500_and_store_nothing(client, keys, endpoint, body,
                                                              headers, method):
    before = delivery_count()
    response = client.open(endpoints(keys)[endpoint], method=method, data=body, headers=headers)
    assert response.status_code in ALLOWED
    assert delivery_count() == before


@pytest.mark.parametrize("endpoint", [0, 1, 2])
@BUDGET
@given(event=json_values, delivery_id=header_value, topic=st.sampled_from(
    ["orders/create", "returns/request", "app/uninstalled", "x" * 300]))
def test_signed_random_json_is_400_or_200(client, keys, endpoint, event, delivery_id, topic):
    body = json.dumps(event).encode()
    if endpoint == 0:
        headers = webhook_headers(topic, SHOP, body, API_SECRET, webhook_id=delivery_id or "w")
        headers["X-Shopify-Webhook-Id"] = delivery_id
    elif endpoint == 1:
        headers = {"X-Auth-Token": TOKEN}
    else:
        headers = {"X-Swapline-Signature": signature(body, SECRET)}
    response = client.post(endpoints(keys)[endpoint], data=body, headers=headers)
    assert response.status_code in (200, 400)


@pytest.mark.parametrize("endpoint", [1, 2])
@BUDGET
@given(event_id=st.one_of(st.text(max_size=400), st.integers()), name=st.text(max_size=300))
def test_signed_events_with_hostile_ids_are_400_or_200(client, keys, endpoint, event_id, name):
    if endpoint == 1:
        event = {"webhookEventId": event_id, "orderId": 1}
        body, headers = json.dumps(event).encode(), {"X-Auth-Token": TOKEN}
    else:
        event = {"id": str(event_id), "event": name or "e", "order_name": "#1",
                 "occurred_at": "2026-11-27T12:00:00Z"}
        body = json.dumps(event).encode()
        headers = {"X-Swapline-Signature": signature(body, SECRET)}
    assert client.post(endpoints(keys)[endpoint], data=body, headers=headers).status_code \
        in (200, 400)


def test_a_10_mb_body_is_refused_with_413_and_nothing_is_stored(client, keys):
    body = b"{" + b" " * TEN_MB + b"}"
    shopify = webhook_headers("orders/create", SHOP, body, API_SECRET)
    signed = [("/webhooks/shopify", shopify),
              (f"/webhooks/ongoing/{keys[SHOP]}", {"X-Auth-Token": TOKEN}),
              (f"/webhooks/return-events/{keys[SHOP]}",
               {"X-Swapline-Signature": signature(body, SECRET)})]
    for path, headers in signed:
        assert client.post(path, data=body, headers=headers).status_code == 413, path
    assert delivery_count() == 0


def test_replayed_and_resigned_shopify_webhooks(client, post_webhook, queued):
    payload = {"id": 1, "myshopify_domain": SHOP, "name": "alpha"}
    for _ in range(3):
        assert post_webhook("shop/update", payload, webhook_id="wh-1").status_code == 200
    assert delivery_count() == 1 and len(queued()) == 1
    resigned = post_webhook("shop/update", payload, secret="other-secret-" + "e" * 40,
                            webhook_id="wh-2")
    assert resigned.status_code == 401
    body = json.dumps(payload).encode()
    headers = webhook_headers("shop/update", SHOP, body, API_SECRET, webhook_id="wh-3")
    tampered = body.replace(b'"id": 1', b'"id": 2')
    assert client.post("/webhooks/shopify", data=tampered, headers=headers).status_code == 401
    assert delivery_count() == 1


# --- Settings forms ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/settings", "/settings/test-connection"])
@BUDGET
@given(changes=st.dictionaries(st.sampled_from(FORM_FIELDS), form_text, min_size=1),
       password=st.text(min_size=1, max_size=60))
def test_random_settings_forms_are_200_or_422_and_never_echo_the_password(
        keys, htmx, valid_form, path, changes, password):
    password = "Pw#" + password  # a value no page contains by chance
    form = valid_form | changes | {"password": password}
    before = settings_snapshot()
    response = htmx("POST", path, data=form)
    assert response.status_code in (200, 422)
    page = response.get_data(as_text=True)
    assert password not in page and escape(password) not in page
    if response.status_code == 422:
        assert settings_snapshot() == before


# --- Secrets never leak -----------------------------------------------------------------------

@pytest.fixture
def log_lines():
    """Every log line of the test, formatted as production formats it."""
    stream, root = io.StringIO(), logging.getLogger()
    handler, level = logging.StreamHandler(stream), root.level
    handler.setFormatter(logs.JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream.getvalue
    root.removeHandler(handler)
    root.setLevel(level)


def test_secrets_never_reach_a_response_or_a_log_line(client, keys, htmx, valid_form,
                                                      session_token, post_webhook, log_lines):
    token = session_token()
    secrets = [API_SECRET, valid_form["password"], valid_form["webhook_token"], TOKEN, SECRET,
               token, "shpat_fake"]
    body = json.dumps({"secret": API_SECRET, "password": valid_form["password"]}).encode()
    responses = [
        client.post("/webhooks/shopify", data=body,
                    headers={"X-Shopify-Hmac-Sha256": API_SECRET, "X-Auth-Token": TOKEN}),
        post_webhook("orders/create", {"token": TOKEN}, secret=valid_form["password"] * 2),
        client.post(f"/webhooks/ongoing/{keys[OTHER_SHOP]}", data=body,
                    headers={"X-Auth-Token": TOKEN}),
        client.post(f"/webhooks/return-events/{keys[OTHER_SHOP]}", data=body,
                    headers={"X-Swapline-Signature": signature(body, SECRET)}),
        client.get(f"/?embedded=1&shop={SHOP}&id_token={token}"),
        client.get("/", headers={"Authorization": f"Bearer {token}x"}),
        htmx("POST", "/settings/test-connection", data=valid_form | {"password": "wrong" * 8}),
        htmx("POST", "/settings/test-connection", data=valid_form),
        htmx("POST", "/settings", data=valid_form | {"warehouse_id": "99"}),
        htmx("POST", "/settings", data=valid_form),
        htmx("GET", "/settings"), htmx("GET", "/settings/choices"),
    ]
    logged = log_lines()
    assert logged  # the refusals above are logged: the handler saw them
    for response in responses:
        assert response.status_code != 500
        page = response.get_data(as_text=True)
        for secret in secrets:
            assert secret not in page, (response.request.path, secret[:8])
    for secret in secrets + ["wrong" * 8]:
        assert secret not in logged, secret[:8]


# --- Session tokens (cases test_app_home.py does not cover) ------------------------------------

def test_a_token_for_shop_b_shows_b_whatever_the_url_says(make_shop, htmx, client,
                                                          session_token):
    make_shop(SHOP, order_number_prefix="ALPHA")
    make_shop(OTHER_SHOP, order_number_prefix="BETA")
    _add_exchange(SHOP, order_name="#A-1")
    _add_exchange(OTHER_SHOP, order_name="#B-1")
    for path in (f"/settings?shop={SHOP}", f"/exchanges?shop={SHOP}"):
        page = htmx("GET", path, shop=OTHER_SHOP).get_data(as_text=True)
        assert "ALPHA" not in page and "#A-1" not in page
    assert 'value="BETA"' in htmx("GET", f"/settings?shop={SHOP}", shop=OTHER_SHOP).get_data(
        as_text=True)
    assert "#B-1" in htmx("GET", f"/exchanges?shop={SHOP}", shop=OTHER_SHOP).get_data(
        as_text=True)


@pytest.mark.parametrize("case,accepted", [
    ("nbf 5 s ahead (inside the 10 s leeway)", True),
    ("nbf 30 s ahead (beyond the leeway)", False),
    ("iat 30 s ahead (beyond the leeway)", False),
    ("iss path is not /admin", False),
    ("iss on a look-alike host", False),
    ("dest with a path to another shop", False),
    ("no sid", False),
])
def test_more_session_token_edges(make_shop, client, session_token, case, accepted):
    make_shop(SHOP)
    now = int(time.time())
    claims = {
        "nbf 5 s ahead (inside the 10 s leeway)": {"nbf": now + 5},
        "nbf 30 s ahead (beyond the leeway)": {"nbf": now + 30, "iat": now + 30},
        "iat 30 s ahead (beyond the leeway)": {"iat": now + 30},
        "iss path is not /admin": {"iss": f"https://{SHOP}/admin/../store"},
        "iss on a look-alike host": {"iss": f"https://{SHOP}.evil.example/admin"},
        "dest with a path to another shop": {"dest": f"https://{OTHER_SHOP}/{SHOP}"},
        "no sid": {"sid": ""},
    }[case]
    response = client.get("/", headers={"Authorization": f"Bearer {session_token(**claims)}",
                                        "HX-Request": "true"})
    assert response.status_code == (200 if accepted else 401)


# --- Cross-shop ------------------------------------------------------------------------------

def _add_exchange(domain: str, **fields) -> int:
    from models.types import utcnow

    values = {"return_gid": "gid://shopify/Return/1", "order_gid": "gid://shopify/Order/1",
              "order_name": "#1001", "state": "needs_attention", "created_at": utcnow(),
              "updated_at": utcnow()} | fields
    with db.session() as s:
        exchange = Exchange(shop_domain=domain, **values)
        s.add(exchange)
        s.flush()
        return exchange.id


def exchange_routes(app) -> list[tuple[str, str, dict]]:
    """(method, endpoint, other arguments) for every /exchanges route that takes an int id."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/exchanges/") or "<int:" not in rule.rule:
            continue
        variants = [{}]
        for name, converter in rule._converters.items():  # e.g. any(retry, release, ...)
            if hasattr(converter, "items"):
                variants = [v | {name: item} for v in variants for item in sorted(converter.items)]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found += [(method, rule.endpoint, variant) for variant in variants]
    return found


def test_every_exchange_route_is_404_for_another_shops_exchange(app, make_shop, htmx, queued):
    from flask import url_for

    make_shop(SHOP)
    make_shop(OTHER_SHOP, instant_exchange=True)
    theirs = _add_exchange(OTHER_SHOP)
    routes = exchange_routes(app)
    assert len(routes) >= 6  # show, status, retry, release, in-transit, cancel
    with app.test_request_context():
        urls = [(m, url_for(e, exchange_id=theirs, **extra)) for m, e, extra in routes]
    for method, url in urls:
        assert htmx(method, url).status_code == 404, (method, url)
        assert htmx(method, url.replace(str(theirs), "999999")).status_code == 404
    assert queued() == []
    for method, url in urls:  # the owner reaches each of them
        assert htmx(method, url, shop=OTHER_SHOP).status_code in (200, 204), (method, url)


def test_webhook_keys_do_not_cross_shops(client, keys):
    event = json.dumps({"webhookEventId": 1, "orderId": 1}).encode()
    ongoing = f"/webhooks/ongoing/{keys[SHOP]}"
    assert client.post(ongoing, data=event, headers={"X-Auth-Token": TOKEN + "b"}).status_code \
        == 401
    returns = f"/webhooks/return-events/{keys[SHOP]}"
    signed_b = {"X-Swapline-Signature": signature(event, SECRET + "b")}
    assert client.post(returns, data=event, headers=signed_b).status_code == 401
    for path in ("/webhooks/ongoing/", "/webhooks/return-events/"):
        for key in ("nope", keys[SHOP] + "x", "x" * 65, keys[SHOP].upper()):
            assert client.post(path + key, data=event,
                               headers={"X-Auth-Token": TOKEN}).status_code == 404
    assert delivery_count() == 0
