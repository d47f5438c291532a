"""Bench-only WSGI app: Swapline's app plus two baselines, a bare route that does no work and a
verify-only route that checks a Shopify webhook's HMAC the way POST /webhooks/shopify does."""
from __future__ import annotations

from flask import Flask, Response, request

from app import create_app
from clients.shopify import shopify


def create_bench_app() -> Flask:
    """Swapline's app from the environment, plus `POST /bench/bare` and `POST /bench/verify`."""
    app = create_app()

    @app.post("/bench/bare")
    def bare() -> Response:
        """200 with no work: the cost of gunicorn + Flask alone."""
        return Response(b"", status=200)

    @app.post("/bench/verify")
    def verify() -> Response:
        """200 once the webhook's HMAC verifies (401 otherwise): the least a webhook can cost."""
        body = request.get_data(cache=False).decode("utf-8")
        result = shopify().app.verify_webhook_req(
            {"method": request.method, "headers": dict(request.headers), "url": request.url,
             "body": body})
        return Response(b"", status=200 if result.ok else 401)

    return app
