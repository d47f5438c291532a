"""What an alert says: the mail (subject, plain text, HTML), the digest mail, the webhook body
(DESIGN.md), and the link that opens the exchange inside Shopify admin."""
from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import quote

from flask import current_app

from models.alert import RESOLVED_EVENT, Alert, label
from models.exchange import Exchange
from models.types import utcnow

FOOTER = ("You get this mail because this address is set under Settings → Notifications in "
          "Swapline.")
TEST_REASON = "Test alert from Swapline: alerts reach you here."


def admin_url(domain: str, path: str = "") -> str:
    """A page of the app inside Shopify admin (in the sandbox: the sandbox admin)."""
    settings = current_app.config["SETTINGS"]
    if settings.sandbox:
        return f"{settings.shopify_origin}/admin/apps/swapline{path}?shop={quote(domain)}"
    store = domain.removesuffix(".myshopify.com")
    return f"https://admin.shopify.com/store/{quote(store)}/apps/{settings.api_key}{path}"


def exchange_link(domain: str, exchange_id: int) -> str:
    """The exchange page inside Shopify admin."""
    return admin_url(domain, f"/exchanges/{int(exchange_id)}")


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _headline(event: str, alert: Alert, exchange: Exchange) -> str:
    if event == RESOLVED_EVENT:
        return f"{exchange.order_name}: resolved ({label(alert.condition)})"
    return f"{exchange.order_name}: {label(alert.condition)}"


def single_mail(event: str, alert: Alert, exchange: Exchange) -> tuple[str, str, str]:
    """(subject, text, html) of one alert."""
    headline = _headline(event, alert, exchange)
    link = exchange_link(exchange.shop_domain, exchange.id)
    reason = "The exchange moved on." if event == RESOLVED_EVENT else alert.reason
    subject = f"Swapline: {headline} — {reason[:90]}"
    text = (f"{headline}\n\nExchange for Shopify order {exchange.order_name}\nReason: {reason}\n"
            f"Since: {_when(alert.since)}\n\nOpen the exchange: {link}\n\n-- \n{FOOTER}\n")
    html = (f"<h2>{escape(headline)}</h2><p>Exchange for Shopify order "
            f"<b>{escape(exchange.order_name)}</b></p><p>Reason: {escape(reason)}<br>"
            f"Since: {_when(alert.since)}</p><p><a href=\"{escape(link)}\">Open the exchange"
            f"</a></p><hr><p><small>{escape(FOOTER)}</small></p>")
    return subject, text, html


def digest_mail(domain: str, items: list[tuple[str, Alert, Exchange]]) -> tuple[str, str, str]:
    """(subject, text, html) of one mail with several alerts."""
    subject = f"Swapline: {len(items)} alerts for {domain}"
    lines, rows = [], []
    for event, alert, exchange in items:
        headline = _headline(event, alert, exchange)
        link = exchange_link(domain, exchange.id)
        reason = "The exchange moved on." if event == RESOLVED_EVENT else alert.reason
        lines.append(f"- {headline}: {reason}\n  {link}")
        rows.append(f"<li><a href=\"{escape(link)}\">{escape(headline)}</a>: "
                    f"{escape(reason)}</li>")
    text = (f"{len(items)} alerts for {domain} within the hour:\n\n" + "\n".join(lines)
            + f"\n\n-- \n{FOOTER}\n")
    html = (f"<h2>{len(items)} alerts for {escape(domain)}</h2><ul>{''.join(rows)}</ul>"
            f"<hr><p><small>{escape(FOOTER)}</small></p>")
    return subject, text, html


def webhook_payload(event: str, alert: Alert, exchange: Exchange) -> dict:
    """The alert webhook's JSON body (DESIGN.md)."""
    at = alert.resolved_at if event == RESOLVED_EVENT and alert.resolved_at else alert.opened_at
    return {"event": event, "shop": exchange.shop_domain, "order_name": exchange.order_name,
            "exchange_id": exchange.id, "reason": alert.reason,
            "url": exchange_link(exchange.shop_domain, exchange.id),
            "occurred_at": at.isoformat()}


def trial_mail(domain: str) -> tuple[str, str, str]:
    """(subject, text, html) of the Settings page's test alert."""
    link = admin_url(domain)
    text = f"{TEST_REASON}\n\nOpen Swapline: {link}\n\n-- \n{FOOTER}\n"
    html = (f"<p>{escape(TEST_REASON)}</p><p><a href=\"{escape(link)}\">Open Swapline</a></p>"
            f"<hr><p><small>{escape(FOOTER)}</small></p>")
    return f"Swapline: test alert for {domain}", text, html


def trial_payload(domain: str) -> dict:
    """The test alert's webhook body: the contract's fields, no exchange, `test` true."""
    return {"event": "exchange.needs_attention", "shop": domain, "order_name": None,
            "exchange_id": None, "reason": TEST_REASON, "url": admin_url(domain),
            "occurred_at": utcnow().isoformat(), "test": True}
