"""A long-lived process (gunicorn's workers, `flask worker`: the app built from the environment)
moves what start-up made to the garbage collector's permanent generation, so a full collection
does not walk it again and again; an app built from a config (the tests) does not."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from app import create_app

ROOT = Path(__file__).resolve().parent.parent
FROZEN = "import gc; from app import create_app; create_app(); print(gc.get_freeze_count())"


def test_an_app_built_from_the_environment_freezes_what_start_up_made(base_config):
    result = subprocess.run([sys.executable, "-c", FROZEN], cwd=ROOT, timeout=120,
                            env={**os.environ, **base_config}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) > 50_000  # modules, classes, mappers, the app


def test_an_app_built_from_a_config_freezes_nothing(base_config, migrated):
    before = gc.get_freeze_count()
    create_app(base_config)
    assert gc.get_freeze_count() == before
