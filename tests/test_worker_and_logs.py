"""The real worker process and the log lines it and the web side write."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

import logs
from models import db
from models.delivery import WebhookDelivery
from tests.conftest import API_SECRET, SHOP

ROOT = Path(__file__).resolve().parent.parent


def test_flask_worker_burst_processes_a_delivery(app, base_config, post_webhook):
    post_webhook("returns/reopen", {"id": 1, "admin_graphql_api_id": "gid://shopify/Return/1"})
    env = {**os.environ, **base_config}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    with db.session() as s:
        [row] = s.exec(select(WebhookDelivery))
    assert row.processed_at is not None
    assert API_SECRET not in result.stderr + result.stdout


def test_cli_refuses_to_start_without_secrets_with_a_clear_error(base_config):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPIFY_", "SWAPLINE_"))}
    env.update(DATABASE_URL=base_config["DATABASE_URL"])
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "sweep"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SHOPIFY_API_KEY is missing" in result.stderr + result.stdout


def test_log_lines_are_json_with_context_and_no_secrets():
    logs.setup([API_SECRET])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("swapline.test")
    logger.addHandler(handler)
    try:
        with logs.context(shop=SHOP, delivery_id=7):
            logger.warning("calling with %s and Bearer abc.def.ghi and shpat_0123abcd, "
                           "GET /?id_token=eyJhbGciOi.eyJpc3Mi.c2lnbmF0dXJl", API_SECRET)
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().strip())
    assert line["shop"] == SHOP and line["delivery_id"] == 7 and line["level"] == "WARNING"
    assert API_SECRET not in line["msg"] and "shpat_0123abcd" not in line["msg"]
    assert "abc.def.ghi" not in line["msg"] and "eyJpc3Mi" not in line["msg"]
    assert line["msg"].count("[redacted]") == 4


def test_an_unhandled_error_logs_the_route_never_a_path_with_a_webhook_key(app, client,
                                                                         monkeypatch, caplog):
    import blueprints.webhooks_ongoing as ongoing_hooks

    def boom(_key, *_args, **_kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(ongoing_hooks, "by_ongoing_webhook_key", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    key = "k3y-" + "s" * 28
    with caplog.at_level(logging.ERROR):
        response = client.post(f"/webhooks/ongoing/{key}", json={"orderId": 1})
    assert response.status_code == 500
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/webhooks/ongoing/<" in logged and key not in logged
