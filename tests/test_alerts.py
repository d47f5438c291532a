"""Alerts end to end, against a real SMTP server (the sandbox's aiosmtpd catcher) and a local
HTTP server for the webhook: one mail and one signed POST per alert, the digest, outages that
delay and never lose, resolved alerts, and the test alert."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import timedelta

import pytest
from sqlmodel import select

from jobs.alert_send import send_test_alert
from jobs.alerts import conditions, scan_shop, tick
from jobs.lifecycle import advance
from models import db
from models.alert import Alert, AlertMessage
from models.alert_form import save_alerts
from models.exchange import Exchange, timeline
from models.settings import ShopSettings, apply, settings_of
from models.types import utcnow
from sandbox.mail import MailCatcher
from tests.alert_support import stalled_exchange
from tests.conftest import API_KEY, SHOP
from tests.lifecycle_world import EVENTS_SECRET

CONTRACT_KEYS = {"event", "shop", "order_name", "exchange_id", "reason", "url", "occurred_at"}


def use_settings(app, **changes) -> None:
    app.config["SETTINGS"] = dataclasses.replace(app.config["SETTINGS"], **changes)


@pytest.fixture
def alerting(app, smtp):
    """The app mailing through the catcher; local webhook URLs allowed (SWAPLINE_DEV)."""
    use_settings(app, smtp_url=smtp.url, dev=True, mail_from="Swapline <alerts@swapline.test>")
    return app


def alerts_to(domain: str, *, emails: str = "ops@shop.se", url: str = "", **more) -> None:
    errors = save_alerts(domain, {"alert_emails": emails, "alert_webhook_url": url, **more},
                         allow_local=True)
    assert errors == {}
    with db.session() as s:
        apply(s.get(ShopSettings, settings_of(domain).id), {"events_secret": EVENTS_SECRET})


def signed(headers: dict, body: bytes) -> bool:
    expected = hmac.new(EVENTS_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Swapline-Signature"], expected)


def lines(exchange_id: int, kind: str = "alert") -> list[str]:
    with db.session() as s:
        return [f"{e.name}: {e.outcome}" for e in timeline(exchange_id, session=s)
                if e.kind == kind]


def test_out_of_stock_alerts_once_by_mail_and_webhook_then_resolves(world, alerting, smtp,
                                                                    hook):
    world.setup(stock=0)
    alerts_to(world.domain, emails="ops@shop.se, 3pl@wh.se", url=hook.url,
              alert_resolved="on")
    world.approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    [mail] = smtp.mails()
    link = (f"https://admin.shopify.com/store/{world.domain.split('.')[0]}/apps/{API_KEY}"
            f"/exchanges/{exchange.id}")
    assert mail.to == ["ops@shop.se", "3pl@wh.se"]
    assert "#1001" in mail.subject and "Needs attention" in mail.subject
    assert exchange.attention_reason in mail.text and link in mail.text
    assert f'href="{link}"' in mail.html and "#1001" in mail.html
    [(headers, body)] = hook.received
    assert signed(headers, body)
    payload = hook.bodies()[0]
    assert set(payload) == CONTRACT_KEYS
    assert payload["event"] == "exchange.needs_attention" and payload["url"] == link
    assert (payload["shop"], payload["order_name"], payload["exchange_id"]) == (
        world.domain, "#1001", exchange.id)
    assert payload["reason"] == exchange.attention_reason
    for _ in range(2):  # the condition still holds: no second alert
        tick()
        scan_shop(world.domain)
        world.run_jobs()
    assert len(smtp.mails()) == 1 and len(hook.received) == 1
    assert sorted(line.split(":")[0] for line in lines(exchange.id)) == [
        "alert", "alert mail", "alert webhook"]
    world.account.add_article("SHIRT-L", "Shirt L", 3)
    advance(exchange.id, "retry", "merchant: Retry")
    world.run_jobs()
    assert world.exchange().state == "parked"
    scan_shop(world.domain)
    world.run_jobs()
    assert "resolved" in smtp.mails()[-1].subject and len(smtp.mails()) == 2
    assert hook.bodies()[-1]["event"] == "exchange.resolved"
    with db.session() as s:
        assert s.exec(select(Alert)).one().resolved_at is not None


@pytest.mark.parametrize("state,days,fields,condition,words", [
    ("parked", 15, {}, "stalled_parked", "nothing heard of the customer's return"),
    ("released", 3, {}, "stalled_released", "not Sent yet"),
    ("fulfilled", 2, {}, "stalled_uncollected", "price difference of 5.00 EUR"),
    ("needs_attention", 0, {"attention_reason": "Possible double shipment: Ongoing order "
                                                "1001-B holds SHIRT-L for the customer."},
     "double_shipment", "Possible double shipment: Ongoing order 1001-B"),
])
def test_each_condition_mails_once(alerting, make_shop, smtp, hook, state, days, fields,
                                   condition, words, run_jobs):
    make_shop(SHOP)
    alerts_to(SHOP, url=hook.url)
    if state != "needs_attention":
        stalled_exchange(SHOP, state, days=0.9, number=1002, **fields)  # not stalled yet
    exchange_id = stalled_exchange(SHOP, state, days=days, **fields)
    assert list(conditions(_exchange(exchange_id), settings_of(SHOP), utcnow())) == [condition]
    for _ in range(2):
        scan_shop(SHOP)
        run_jobs()
    [mail] = smtp.mails()
    assert "#1001" in mail.subject and words in mail.text
    assert hook.bodies()[0]["event"] == ("exchange.needs_attention"
                                         if condition == "double_shipment"
                                         else "exchange.stalled")
    with db.session() as s:
        assert [a.condition for a in s.exec(select(Alert))] == [condition]


def test_return_not_booked_in_asks_ongoing_first(world, alerting, smtp):
    world.setup()
    alerts_to(world.domain)
    world.approve()
    world.run_jobs()
    world.close()
    world.run_jobs()
    world.warehouse_moves(450, waybill="W1")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "completed" and exchange.return_closed_at is not None
    with db.session() as s:
        s.get(Exchange, exchange.id).return_closed_at -= timedelta(days=8)
    scan_shop(world.domain)
    world.run_jobs()
    [mail] = smtp.mails()
    assert "Return not booked in" in mail.subject and "has not booked it in" in mail.text
    world.ongoing.move_return_order(exchange.ongoing_return_order_id, 200)  # booked in
    scan_shop(world.domain)
    assert world.exchange().returned_in_ongoing_at is not None
    with db.session() as s:
        assert s.exec(select(Alert)).one().resolved_at is not None


def test_thresholds_are_the_shops(alerting, make_shop, smtp, run_jobs):
    make_shop(SHOP)
    alerts_to(SHOP, stall_released_days="5")
    stalled_exchange(SHOP, "released", days=3)
    scan_shop(SHOP)
    run_jobs()
    assert smtp.mails() == []


def test_more_than_three_alerts_in_an_hour_become_one_digest(alerting, make_shop, smtp, run_jobs):
    make_shop(SHOP)
    alerts_to(SHOP)
    ids = [stalled_exchange(SHOP, "released", days=3, number=2000 + n) for n in range(7)]
    scan_shop(SHOP)
    run_jobs(retries=True)
    mails = smtp.mails()
    assert len(mails) == 4
    digest = mails[-1]
    assert digest.subject == f"Swapline: 4 alerts for {SHOP}"
    assert all(f"#{2000 + n}" in digest.text for n in range(3, 7))
    with db.session() as s:
        messages = s.exec(select(AlertMessage)).all()
    assert len(messages) == 7 and all(m.sent_at for m in messages)
    assert sum(m.digest for m in messages) == 4
    assert any("held for the digest" in line for line in lines(ids[-1]))


def test_smtp_down_then_back_loses_nothing(app, make_shop, smtp, run_jobs):
    port = smtp.port
    smtp.stop()  # nothing listens on the port now
    use_settings(app, smtp_url=f"smtp://127.0.0.1:{port}")
    make_shop(SHOP)
    alerts_to(SHOP)
    exchange_id = stalled_exchange(SHOP, "needs_attention", days=0,
                                   attention_reason="Out of stock: SHIRT-L has 0")
    scan_shop(SHOP)
    run_jobs()
    with db.session() as s:
        message = s.exec(select(AlertMessage)).one()
    assert message.sent_at is None and message.attempts == 1
    assert "unreachable" in message.last_error
    assert any("failed" in line and "next try in 30 s" in line for line in lines(exchange_id))
    assert _exchange(exchange_id).state == "needs_attention"  # the exchange is not held up
    back = MailCatcher(port=port).start()
    try:
        run_jobs(retries=True)
        [mail] = back.mails()
        assert "Out of stock" in mail.text
    finally:
        back.stop()
    with db.session() as s:
        assert s.exec(select(AlertMessage)).one().sent_at is not None


def test_a_lost_job_is_queued_again_by_the_tick(alerting, make_shop, smtp, queued, run_jobs):
    from jobs.queue import jobs

    make_shop(SHOP)
    alerts_to(SHOP)
    stalled_exchange(SHOP, "released", days=3)
    scan_shop(SHOP)
    jobs().connection.flushdb()  # Redis lost every job
    with db.session() as s:
        row = s.exec(select(AlertMessage)).one()
        row.created_at = row.created_at.replace(year=2020)
    tick()
    run_jobs()
    assert len(smtp.mails()) == 1


def test_webhook_retried_with_backoff_until_2xx(alerting, make_shop, hook, run_jobs):
    hook.statuses[:] = [500, 503]
    make_shop(SHOP)
    alerts_to(SHOP, emails="", url=hook.url)
    exchange_id = stalled_exchange(SHOP, "released", days=3)
    scan_shop(SHOP)
    run_jobs(retries=True)
    assert len(hook.received) == 3
    assert all(signed(h, b) for h, b in hook.received)
    assert len({b for _, b in hook.received}) == 1  # the same body each time
    outcomes = [line for line in lines(exchange_id) if line.startswith("alert webhook")]
    assert outcomes == ["alert webhook: failed: alert webhook answered HTTP 500; next try in 30 s",
                        "alert webhook: failed: alert webhook answered HTTP 503; next try in 120 s",
                        "alert webhook: webhook answered HTTP 200"]


def test_webhook_url_checked_again_at_send_time(app, make_shop, hook, run_jobs):
    make_shop(SHOP)  # outside dev: the URL's host must resolve to public addresses
    with db.session() as s:
        apply(s.get(ShopSettings, settings_of(SHOP).id),
              {"alert_webhook_url": hook.url.replace("http://127.0.0.1", "https://localhost"),
               "events_secret": EVENTS_SECRET})
    exchange_id = stalled_exchange(SHOP, "released", days=3)
    scan_shop(SHOP)
    run_jobs()
    assert hook.received == []
    assert any("private or local" in line for line in lines(exchange_id))


def test_without_smtp_no_mail_and_it_says_so(app, make_shop):
    use_settings(app, smtp_url=None)
    make_shop(SHOP)
    alerts_to(SHOP)
    exchange_id = stalled_exchange(SHOP, "released", days=3)
    scan_shop(SHOP)
    assert any("SWAPLINE_SMTP_URL is not set" in line for line in lines(exchange_id))
    with db.session() as s:
        assert s.exec(select(AlertMessage)).all() == []
    assert "SWAPLINE_SMTP_URL is not set" in send_test_alert(SHOP)["mail"]


def test_send_test_alert_reports_each_channel(alerting, make_shop, smtp, hook):
    make_shop(SHOP)
    assert send_test_alert(SHOP) == {"mail": "no alert address is set",
                                     "webhook": "no alert webhook URL is set"}
    alerts_to(SHOP, url=hook.url)
    assert send_test_alert(SHOP) == {"mail": "ok", "webhook": "ok"}
    assert smtp.mails()[0].subject == f"Swapline: test alert for {SHOP}"
    assert hook.bodies()[0]["test"] is True and signed(*hook.received[0])
    hook.statuses[:] = [502]
    port = smtp.port
    use_settings(alerting, smtp_url=f"smtp://alerts:s3cret-pass@127.0.0.1:{port}")
    smtp.stop()
    result = send_test_alert(SHOP)
    assert result["webhook"] == "alert webhook answered HTTP 502"
    assert result["mail"].startswith(f"mail server 127.0.0.1:{port} unreachable")
    assert "s3cret-pass" not in str(result) and "s3cret-pass" not in repr(
        alerting.config["SETTINGS"])


def _exchange(exchange_id: int) -> Exchange:
    with db.session() as s:
        return s.get(Exchange, exchange_id)




def test_sandbox_admin_lists_the_mail_and_its_link_opens_the_exchange(alerting, make_shop,
                                                                      smtp, run_jobs, client):
    from urllib.parse import urlsplit

    from sandbox.shopify.server import Store, create_sandbox_app
    from tests.conftest import API_SECRET

    origin = "http://127.0.0.1:9100"
    use_settings(alerting, sandbox=True, shopify_origin=origin)
    store = Store(API_KEY, API_SECRET)
    store.add_shop(SHOP)
    admin = create_sandbox_app(store, "http://app.test", smtp).test_client()
    make_shop(SHOP)
    alerts_to(SHOP)
    exchange_id = stalled_exchange(SHOP, "released", days=3)
    scan_shop(SHOP)
    run_jobs()
    [mail] = smtp.mails()
    link = f"{origin}/admin/apps/swapline/exchanges/{exchange_id}?shop={SHOP}"
    assert link in mail.text
    page = admin.get("/admin/mail")
    assert page.status_code == 200
    assert mail.subject.replace("'", "&#39;") in page.get_data(as_text=True)
    opened = admin.get(link.removeprefix(origin))
    assert opened.status_code == 302
    target = urlsplit(opened.headers["Location"])
    assert (target.netloc, target.path) == ("app.test", f"/exchanges/{exchange_id}")
    page = client.get(f"{target.path}?{target.query}")
    assert page.status_code == 200 and "#1001" in page.get_data(as_text=True)


def test_a_channel_removed_before_sending_closes_its_message_unsent(alerting, make_shop, hook,
                                                                    run_jobs):
    make_shop(SHOP)
    alerts_to(SHOP, emails="", url=hook.url)
    exchange_id = stalled_exchange(SHOP, "released", days=3)
    scan_shop(SHOP)  # the message row is written, its job queued
    alerts_to(SHOP, emails="", url="")
    run_jobs()
    assert hook.received == []
    with db.session() as s:
        message = s.exec(select(AlertMessage)).one()
    assert message.sent_at is not None and "no alert webhook URL" in message.last_error
    assert "alert webhook: not sent: no alert webhook URL is set any more" in lines(exchange_id)
