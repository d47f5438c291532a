"""App Home: session-token verification, CSP, bounce page, first-load token exchange, shop scope."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from sqlmodel import select

from models import crypto, db
from models.shop import Shop, get_shop
from tests.conftest import API_KEY, API_SECRET, OTHER_SHOP, SHOP


def test_valid_id_token_renders_home_with_csp(client, session_token):
    response = client.get(f"/?embedded=1&shop={SHOP}&id_token={session_token()}")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == \
        f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
    assert "app-bridge.js" in response.headers["Link"]
    page = response.get_data(as_text=True)
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in page
    assert "https://cdn.shopify.com/shopifycloud/app-bridge.js" in page
    assert "vendor/htmx.min.js" in page and "app.js" in page


def test_first_load_exchanges_and_stores_an_encrypted_expiring_token(app, client, sandbox,
                                                                     session_token):
    client.get(f"/?embedded=1&shop={SHOP}&id_token={session_token()}")
    with db.session() as s:
        shop = get_shop(SHOP, session=s)
    assert shop is not None and shop.installed
    assert crypto.decrypt(shop.access_token_enc).startswith("shpat_")
    assert "shpat_" not in shop.access_token_enc  # stored encrypted
    assert shop.access_token_expires_at is not None and shop.refresh_token_expires_at is not None
    assert sandbox.store.count("token_exchange", SHOP) == 1
    client.get(f"/?embedded=1&shop={SHOP}&id_token={session_token()}")
    assert sandbox.store.count("token_exchange", SHOP) == 1  # second load: no new exchange


def test_first_load_queues_the_shop_details_sync(app, client, session_token, queued, run_jobs):
    client.get(f"/?embedded=1&shop={SHOP}&id_token={session_token()}")
    assert queued() == [f"shop-details-{SHOP.replace('.', '_')}"]
    run_jobs()
    with db.session() as s:
        assert get_shop(SHOP, session=s).name == "alpha-shop"


def _bad_tokens(session_token):
    now = int(time.time())
    return {
        "expired": session_token(exp=now - 60, nbf=now - 120, iat=now - 120),
        "wrong audience": session_token(aud="someone-else"),
        "wrong signature": session_token(secret="not-the-secret-" * 5),
        "alg none": jwt.encode({"iss": f"https://{SHOP}/admin", "dest": f"https://{SHOP}",
                                "aud": API_KEY, "sub": "1", "exp": now + 60, "nbf": now,
                                "iat": now, "jti": "j", "sid": "s"}, None, algorithm="none"),
        "HS512": jwt.encode({"iss": f"https://{SHOP}/admin", "dest": f"https://{SHOP}",
                             "aud": API_KEY, "sub": "1", "exp": now + 60, "nbf": now,
                             "iat": now, "jti": "j", "sid": "s"}, API_SECRET, algorithm="HS512"),
        "not yet valid": session_token(nbf=now + 120, iat=now + 120, exp=now + 180),
        "iss/dest mismatch": session_token(iss=f"https://{OTHER_SHOP}/admin"),
        "dest not a shop": session_token(dest="https://evil.example.com",
                                         iss="https://evil.example.com/admin"),
    }


@pytest.mark.parametrize("case", ["expired", "wrong audience", "wrong signature", "alg none",
                                  "HS512", "not yet valid", "iss/dest mismatch",
                                  "dest not a shop"])
def test_bad_token_on_htmx_request_is_401_with_retry_header(client, session_token, case):
    token = _bad_tokens(session_token)[case]
    response = client.get("/", headers={"Authorization": f"Bearer {token}", "HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    with db.session() as s:
        assert s.exec(select(Shop)).first() is None


@pytest.mark.parametrize("case", ["expired", "wrong signature", "alg none", "iss/dest mismatch"])
def test_bad_token_on_document_load_bounces(client, session_token, case):
    token = _bad_tokens(session_token)[case]
    response = client.get(f"/?embedded=1&shop={SHOP}&host=abc&id_token={token}")
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert location.path == "/auth/patch-id-token"
    query = parse_qs(location.query)
    assert query["shopify-reload"] == [f"/?embedded=1&shop={SHOP}&host=abc"]
    assert "id_token" not in query


def test_document_load_without_token_bounces(client):
    response = client.get(f"/?embedded=1&shop={SHOP}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("http://localhost/auth/patch-id-token?")


def test_patch_id_token_page_loads_app_bridge(client):
    response = client.get(f"/auth/patch-id-token?shop={SHOP}&shopify-reload=%2F%3Fshop%3D{SHOP}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in page
    assert "app-bridge.js" in page and 'data-bounce="1"' in page
    assert response.headers["Content-Security-Policy"].startswith(f"frame-ancestors https://{SHOP}")
    assert client.get("/auth/patch-id-token?shopify-reload=%2F").status_code == 400


def test_a_token_for_shop_a_never_reads_shop_b(client, session_token, run_jobs):
    for shop in (SHOP, OTHER_SHOP):
        client.get(f"/?embedded=1&shop={shop}&id_token={session_token(shop)}")
    run_jobs()
    response = client.get(f"/?shop={OTHER_SHOP}",
                          headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-testid="shop-name">alpha-shop<' in page
    assert "beta-shop" not in page


def test_uninstalled_shop_exchanges_again_on_next_open(client, sandbox, session_token,
                                                        post_webhook, run_jobs):
    client.get(f"/?embedded=1&shop={SHOP}&id_token={session_token()}")
    post_webhook("app/uninstalled", {"id": 1, "myshopify_domain": SHOP, "name": "alpha"})
    run_jobs()
    with db.session() as s:
        shop = get_shop(SHOP, session=s)
        assert not shop.installed and shop.access_token_enc is None
        assert shop.refresh_token_enc is None
    client.get(f"/?embedded=1&shop={SHOP}&id_token={session_token()}")
    with db.session() as s:
        assert get_shop(SHOP, session=s).installed
    assert sandbox.store.count("token_exchange", SHOP) == 2
