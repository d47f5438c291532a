"""Factory, configuration refusal, migrations, health."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect

from app import create_app
from config import ConfigError, load_settings
from models import db, migrate


def test_factory_registers_every_boundary(app):
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert {"/", "/auth/patch-id-token", "/webhooks/shopify", "/healthz"} <= rules


@pytest.mark.parametrize("missing", ["SHOPIFY_API_KEY", "SHOPIFY_API_SECRET",
                                     "SWAPLINE_ENCRYPTION_KEYS"])
def test_refuses_to_start_without_required_secret(base_config, missing):
    config = {k: v for k, v in base_config.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        create_app(config)


def test_refuses_placeholder_secret_and_bad_fernet_key(base_config):
    with pytest.raises(ConfigError, match="SHOPIFY_API_SECRET"):
        create_app({**base_config, "SHOPIFY_API_SECRET": "changeme"})
    with pytest.raises(ConfigError, match="entry 2 is not a Fernet key") as info:
        create_app({**base_config, "SWAPLINE_ENCRYPTION_KEYS":
                    base_config["SWAPLINE_ENCRYPTION_KEYS"] + ",not-a-key"})
    assert "not-a-key" not in str(info.value)


def test_sandbox_mode_needs_no_credentials(tmp_path):
    settings = load_settings({"SWAPLINE_SANDBOX": "1", "SWAPLINE_INSTANCE_PATH": str(tmp_path)})
    assert settings.sandbox and settings.shopify_origin == "http://127.0.0.1:9100"
    again = load_settings({"SWAPLINE_SANDBOX": "1", "SWAPLINE_INSTANCE_PATH": str(tmp_path)})
    assert again.encryption_keys == settings.encryption_keys  # a re-run reads its own data
    assert settings.api_secret not in repr(settings)


def test_defaults_follow_the_contract(tmp_path):
    settings = load_settings({"SWAPLINE_DEV": "1", "SWAPLINE_INSTANCE_PATH": str(tmp_path)})
    assert settings.api_version == "2026-10"
    assert settings.ongoing_url_template == "https://{server}.ongoingsystems.se/{warehouse}/api/v1"
    assert settings.database_url == f"sqlite:///{tmp_path / 'swapline.db'}"
    assert settings.redis_url is None and settings.shopify_origin is None


def _migrate_round_trip(url: str) -> None:
    engine = db.engine_for(url)
    migrate.upgrade(engine)
    assert {"shop", "webhook_delivery", "alembic_version"} <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "base")
    assert "shop" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert "webhook_delivery" in inspect(engine).get_table_names()
    engine.dispose()


def test_migrations_on_sqlite(tmp_path):
    _migrate_round_trip(f"sqlite:///{tmp_path / 'm.db'}")


def test_migrations_on_postgresql(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL is not reachable on this machine")
    import uuid

    import psycopg

    name = f"swapline_mig_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _migrate_round_trip(f"postgresql://postgres@127.0.0.1:5432/{name}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    # No RQ worker runs in tests: the node is up (200) and says the queue is not being worked.
    assert response.get_json() == {"status": "degraded", "database": "ok", "redis": "ok",
                                   "worker": "none"}


def test_healthz_reports_redis_down(client, redis_down):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["redis"].startswith("error")


def test_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = db.engine_for(f"sqlite:///{tmp_path / 'cmp.db'}")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []
