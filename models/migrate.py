"""Alembic driven from the app: `flask --app app db upgrade` and the test setup call these."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to an engine (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database at `engine` to `revision`."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Step the database back to `revision` (used by the migration round-trip test)."""
    command.downgrade(alembic_config(engine), revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the models (developer tool)."""
    command.revision(alembic_config(engine), message=message, autogenerate=True)
