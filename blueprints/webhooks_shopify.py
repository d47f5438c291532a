"""POST /webhooks/shopify: verify the HMAC on the raw body, record, enqueue, answer 200."""
from __future__ import annotations

from flask import Blueprint, request

import jsoncodec
import logs
from blueprints.intake import accept, refuse
from clients.shopify import shopify
from clients.shopify_session import SHOP_DOMAIN

bp = Blueprint("webhooks_shopify", __name__)


@bp.route("/webhooks/shopify", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def receive():
    """Verify a Shopify webhook, record it once, enqueue its job, answer 200."""
    raw = request.get_data(cache=False)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return refuse(400, "body is not UTF-8")
    if not request.headers.get("X-Shopify-Hmac-Sha256", "").isascii():
        # A base64 HMAC is ASCII; hmac.compare_digest raises TypeError on anything else.
        return refuse(401, "invalid_hmac")
    result = shopify().app.verify_webhook_req(
        {"method": request.method, "headers": dict(request.headers), "url": request.url,
         "body": body})
    if not result.ok:
        return refuse(result.response.status, result.log.code)
    topic = request.headers.get("X-Shopify-Topic", "")
    webhook_id = request.headers.get("X-Shopify-Webhook-Id", "")
    shop = request.headers.get("X-Shopify-Shop-Domain", "").lower()
    if not topic or not webhook_id or not SHOP_DOMAIN.match(shop):
        return refuse(400, "topic, webhook id and shop domain headers are required")
    logs.bind(shop=shop, topic=topic)
    try:
        jsoncodec.loads(body)
    except ValueError:
        return refuse(400, "body is not JSON")
    # The event id is shared by the copies one event sends to several subscriptions of a topic.
    event_id = request.headers.get("X-Shopify-Event-Id") or None
    return accept(source="shopify", delivery_id=webhook_id, shop=shop, topic=topic, payload=body,
                  event_id=event_id)
