"""What the browser tests share: Debian's Chromium through Playwright, skipped with a message
where either is missing, and a page with Shopify's CDN blocked whose script errors fail the test.

Importing this module from a test module skips that module when no browser can run; the
fixtures `browser`, `page` and `script_errors` live in conftest.py.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
ARTIFACTS = Path(__file__).parent / "artifacts"  # git-ignored

if not shutil.which(CHROMIUM):
    pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM} "
                "(`make browser-deps` as root installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright "
                               "package (pip install -r requirements-dev.txt)")
expect = sync_api.expect
