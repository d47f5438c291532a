"""`make demo`: the sandbox Shopify, a worker and the app, on the embedded defaults."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from urllib.parse import urlparse

import click
from flask import Flask
from werkzeug.serving import make_server

from jobs import embedded_redis
from jobs.queue import jobs
from models import db, migrate
from sandbox.shopify import SandboxShopify

DEMO_SHOP = "swapline-demo.myshopify.com"
DEMO_SHOP_NAME = "Swapline Demo Store"


def start_sandboxes(app: Flask, app_url: str) -> SandboxShopify:
    """The sandbox Shopify on SHOPIFY_API_ORIGIN's port, with the demo shop, grants kept on disk."""
    settings = app.config["SETTINGS"]
    origin = urlparse(settings.shopify_origin)
    sandbox = SandboxShopify(settings.api_key, settings.api_secret, host=origin.hostname,
                             port=origin.port, app_url=app_url,
                             state_path=settings.instance_path / "sandbox-shopify.json")
    sandbox.store.add_shop(DEMO_SHOP, DEMO_SHOP_NAME)
    return sandbox.start()


def start_worker() -> subprocess.Popen:
    """`flask --app app worker` in its own process, same environment."""
    # Its own session: Ctrl-C reaches only the demo, which then stops the worker itself.
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"],
                            env={**os.environ, "SWAPLINE_SANDBOX": "1"}, start_new_session=True)


def run_demo(app: Flask, *, port: int) -> None:
    """Migrate, start everything, print the one URL to open, stop cleanly on Ctrl-C."""
    settings = app.config["SETTINGS"]
    if not settings.sandbox:
        raise click.ClickException("the demo runs only with SWAPLINE_SANDBOX=1 (make demo)")
    app_url = f"http://127.0.0.1:{port}"
    with app.app_context():
        migrate.upgrade(db.engine())
        jobs().connection.ping()  # starts the embedded Redis (when no REDIS_URL) for all
    sandbox = start_sandboxes(app, app_url)
    worker = start_worker()
    server = make_server("127.0.0.1", port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    click.echo(f"\nSwapline demo is running. Open:\n\n  {sandbox.origin}/admin/apps/swapline"
               f"?shop={DEMO_SHOP}\n\nCtrl-C stops everything.\n", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        server.server_close()
        worker.terminate()
        worker.wait(timeout=30)
        sandbox.stop()
        if not settings.redis_url:
            embedded_redis.stop_server(settings.instance_path)
        click.echo("Swapline demo stopped.")
