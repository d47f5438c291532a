"""Swapline: the Flask app factory and the CLI (`flask --app app ...`)."""
from __future__ import annotations

import gc
import os
import sys
import uuid
from collections.abc import Mapping

import click
from flask import Flask, g, jsonify, request
from htmx_flask import Htmx
from sqlalchemy.exc import InterfaceError, OperationalError

import logs
from config import ConfigError, load_settings

MAX_BODY_BYTES = 2 * 1024 * 1024  # webhooks and forms; larger bodies are refused before parsing
DB_RETRY_AFTER = 5  # seconds, on the 503 answered while the database is unreachable


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment, or from `config` (env-style names) in tests."""
    from blueprints import all_blueprints
    from clients import ongoing_accounts, shopify
    from jobs import metrics, queue
    from models import crypto, db

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        if config is None and click.get_current_context(silent=True) is not None:
            raise click.ClickException(str(exc)) from None  # CLI: one clear line, exit 1
        raise
    app = SwaplineFlask(__name__, instance_path=str(settings.instance_path))
    app.config.update(SETTINGS=settings, MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    logs.setup([settings.api_secret, settings.old_api_secret or "", *settings.encryption_keys],
               level=os.environ.get("SWAPLINE_LOG_LEVEL", "INFO").upper())
    for extension in (db, crypto, queue):
        extension.init_app(app)
    # The clients get what they share with the jobs handed over, as rq's Worker its connection.
    for client in (shopify, ongoing_accounts):
        client.init_app(app, locks=app.extensions[queue.EXTENSION], metrics=metrics)
    Htmx(app)
    for blueprint in all_blueprints():
        app.register_blueprint(blueprint)
    _register_errors(app)
    _register_request_ids(app)
    _register_cli(app)
    if config is None:  # built from the environment: a long-lived process (gunicorn, a worker)
        # Everything alive now (modules, classes, mappers, the app) moves to the permanent
        # generation: a full collection no longer walks it. With the app loaded one took ~90 ms
        # of a worker's CPU, and an exchange's jobs allocate enough to set one off every few
        # exchanges (bench/connector_check.py). Tests build apps from a config: not frozen.
        gc.freeze()
    return app


def _register_request_ids(app: Flask) -> None:
    """Every log line of a request carries its id (and the shop, once known)."""

    @app.before_request
    def bind_request_id():
        g.log_token = logs.bind(request_id=uuid.uuid4().hex[:12])

    @app.teardown_request
    def unbind_request_id(_exc):
        token = g.pop("log_token", None)
        if token is not None:
            logs.unbind(token)


def _register_errors(app: Flask) -> None:
    def as_json(status: int, message: str):
        return jsonify(error=message), status

    @app.errorhandler(404)
    def not_found(_error):
        return as_json(404, "not found")

    @app.errorhandler(405)
    def not_allowed(_error):
        return as_json(405, "method not allowed")

    @app.errorhandler(413)
    def too_large(_error):
        return as_json(413, f"body larger than {MAX_BODY_BYTES} bytes")

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unreachable(error):
        # Nothing was stored: a webhook sender retries on a 503, a person reloads.
        app.logger.warning("database unreachable on %s %s: %s", request.method, _route(),
                           type(getattr(error, "orig", None) or error).__name__)
        response, status = as_json(503, "the database is unreachable right now; retry shortly")
        response.headers["Retry-After"] = str(DB_RETRY_AFTER)
        return response, status

    @app.errorhandler(500)
    def server_error(_error):
        app.logger.error("unhandled error on %s %s", request.method, _route())
        return as_json(500, "internal error")


class SwaplineFlask(Flask):
    def log_exception(self, exc_info) -> None:
        """Flask's own line names request.path, which may hold a shop's webhook key."""
        self.logger.error("Exception on %s [%s]", _route(), request.method, exc_info=exc_info)


def _route() -> str:
    """The matched route's rule (/webhooks/ongoing/<webhook_key>), never the path: a path may
    hold a shop's webhook key."""
    return request.url_rule.rule if request.url_rule else "(no route)"


def _register_cli(app: Flask) -> None:
    from jobs import worker
    from models import crypto, db, migrate

    @app.cli.group("db")
    def db_group():
        """Database migrations."""

    @db_group.command("upgrade")
    @click.argument("revision", default="head")
    def db_upgrade(revision: str):
        """Apply migrations up to REVISION (default: head)."""
        migrate.upgrade(db.engine(), revision)
        click.echo(f"database at {revision}")

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
    def worker_command(burst: bool):
        """Run an RQ worker (with the scheduler) for Swapline's queue."""
        worker.run(app, burst=burst)

    @app.cli.command("sweep")
    def sweep_command():
        """Queue every recorded delivery never processed and exchange event never applied."""
        from jobs.relay import relay_all
        from jobs.sweeper import sweep

        relayed = relay_all()  # those whose job was never queued: the relay's, done here at once
        counts = sweep(grace_seconds=0)
        click.echo(f"enqueued {relayed + counts['deliveries']} unprocessed deliveries and "
                   f"{counts['signals']} pending exchange events")

    @app.cli.command("rotate-keys")
    def rotate_keys_command():
        """Re-encrypt every stored secret with the newest SWAPLINE_ENCRYPTION_KEYS key."""
        from models.settings import SECRET_COLUMNS, ShopSettings
        from models.shop import Shop

        columns = {Shop: ("access_token_enc", "refresh_token_enc"),
                   ShopSettings: tuple(SECRET_COLUMNS.values())}
        try:
            rewritten, current = crypto.rotate_all(columns)
        except crypto.SecretUnreadable as exc:
            raise click.ClickException(str(exc)) from None  # exit 1, nothing changed
        click.echo(f"re-encrypted {rewritten} values with the newest key "
                   f"({current} already current)")

    @app.cli.command("demo")
    @click.option("--port", default=8000, show_default=True)
    @click.option("--returned-status", is_flag=True,
                  help="Give the sandbox warehouse a 3PL-added 800 Returned order status.")
    def demo_command(port: int, returned_status: bool):
        """Run the sandbox Shopify, a worker and the app on the embedded defaults."""
        from demo import run_demo  # the composition root; only this command loads the sandbox

        run_demo(app, port=port, returned_status=returned_status)


def main() -> None:  # pragma: no cover - `python app.py` convenience
    try:
        create_app().run(port=8000)
    except ConfigError as exc:
        sys.exit(f"swapline: {exc}")


if __name__ == "__main__":
    main()
