"""The demo's out-of-stock sample in-process (sandboxes + app + a burst worker), as `make demo`
sets it up: the exchange stops at the stock check, needs attention, and the alert mail reaches
the demo's mail catcher and its page in the sandbox admin."""
from __future__ import annotations

import time

import requests
from sqlmodel import select

from config import SANDBOX_API_KEY, SANDBOX_API_SECRET
from demo import DEMO_ALERT_EMAIL, DEMO_SHOP
from sandbox.shopify import mint_session_token
from tests.test_demo_inprocess import demo_in_process


def test_out_of_stock_sample_needs_attention_and_mails_the_alert(tmp_path, redis_url):
    from jobs.queue import jobs
    from jobs.worker import run_burst_in_process
    from models import db
    from models.exchange import Exchange

    app, server, demo = demo_in_process(tmp_path, redis_url)
    catcher = demo.mail
    try:
        token = mint_session_token(DEMO_SHOP, SANDBOX_API_KEY, SANDBOX_API_SECRET)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}", "HX-Request": "true"}
        response = client.post("/demo/sample-exchange", headers=headers,
                               data={"kind": "out_of_stock"})
        assert response.status_code == 200 and b'data-kind="out_of_stock"' in response.data
        assert b"kind=out_of_stock" in response.data  # the polling keeps the kind
        assert client.post("/demo/sample-exchange", headers=headers,
                           data={"kind": "flood"}).status_code == 400
        deadline, exchange = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            run_burst_in_process(app)
            with app.app_context(), db.session() as s:
                exchange = s.exec(select(Exchange)).first()
            if exchange is not None and exchange.state == "needs_attention" and catcher.mails():
                break
            time.sleep(0.3)
        assert exchange is not None and exchange.state == "needs_attention"
        assert exchange.attention_reason.startswith("Out of stock: TSHIRT-XL-BLUE")
        [mail] = catcher.mails()
        assert mail.to == [DEMO_ALERT_EMAIL] and exchange.order_name in mail.subject
        assert "Out of stock" in mail.text
        mail_page = requests.get(f"{demo.shopify.origin}/admin/mail", timeout=10).text
        assert mail.subject in mail_page

        # The progress block stops polling there and points at the mail.
        with app.app_context(), db.session() as s:
            return_id = s.exec(select(Exchange.return_gid)).first()
        progress = client.get("/demo/sample-progress", headers=headers, query_string={
            "return_id": return_id, "order": exchange.order_name, "kind": "out_of_stock"})
        html = progress.get_data(as_text=True)
        assert 'data-testid="sample-alerted"' in html and "hx-get" not in html
        assert f'href="{app.config["SETTINGS"].shopify_origin}/admin/mail"' in html
    finally:
        demo.stop()
        server.shutdown()
        with app.app_context():
            jobs().connection.flushdb()
