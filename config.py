"""Settings, read once from the environment (or a mapping in tests) and validated."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent
DEFAULT_INSTANCE = ROOT / "instance"
DEFAULT_ONGOING_TEMPLATE = "https://{server}.ongoingsystems.se/{warehouse}/api/v1"
SANDBOX_API_KEY = "swapline-sandbox-api-key"
SANDBOX_API_SECRET = "swapline-sandbox-api-secret-not-for-production-use-0123456789abcdef"
SANDBOX_SHOPIFY_ORIGIN = "http://127.0.0.1:9100"
SANDBOX_ONGOING_TEMPLATE = "http://127.0.0.1:9200/{server}/{warehouse}/api/v1"
PLACEHOLDERS = {"", "changeme", "change-me", "changethis", "secret", "xxx", "todo", "placeholder"}
TRUE = {"1", "true", "yes", "on"}


class ConfigError(RuntimeError):
    """A setting is missing or unusable; the message names the variable, never its value."""


@dataclass(frozen=True)
class Settings:
    api_key: str
    api_secret: str
    old_api_secret: str | None
    api_version: str
    app_url: str
    shopify_origin: str | None
    ongoing_url_template: str
    database_url: str
    redis_url: str | None
    encryption_keys: tuple[str, ...] = field(repr=False)
    instance_path: Path
    sandbox: bool
    dev: bool
    smtp_url: str | None = field(default=None, repr=False)  # may carry the SMTP password
    mail_from: str = "Swapline <alerts@localhost>"

    @property
    def allow_local_urls(self) -> bool:
        """Sandbox/dev: alert webhooks may be http and aim at loopback or private addresses."""
        return self.sandbox or self.dev

    def __repr__(self) -> str:  # secrets never reach a log line through repr()
        return f"Settings(api_key={self.api_key!r}, sandbox={self.sandbox}, dev={self.dev})"


def load_settings(source: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, or from `source` when given (tests)."""
    env = dict(os.environ if source is None else source)
    sandbox = env.get("SWAPLINE_SANDBOX", "").lower() in TRUE
    dev = env.get("SWAPLINE_DEV", "").lower() in TRUE
    relaxed = sandbox or dev
    instance = Path(env.get("SWAPLINE_INSTANCE_PATH") or DEFAULT_INSTANCE)
    api_key = _secret(env, "SHOPIFY_API_KEY", SANDBOX_API_KEY if relaxed else None)
    api_secret = _secret(env, "SHOPIFY_API_SECRET", SANDBOX_API_SECRET if relaxed else None)
    keys = _encryption_keys(env, instance if relaxed else None)
    origin = env.get("SHOPIFY_API_ORIGIN") or (SANDBOX_SHOPIFY_ORIGIN if sandbox else None)
    return Settings(
        api_key=api_key,
        api_secret=api_secret,
        old_api_secret=env.get("SHOPIFY_OLD_API_SECRET") or None,
        api_version=env.get("SHOPIFY_API_VERSION") or "2026-10",
        app_url=(env.get("SHOPIFY_APP_URL") or "http://127.0.0.1:8000").rstrip("/"),
        shopify_origin=origin.rstrip("/") if origin else None,
        ongoing_url_template=env.get("ONGOING_API_URL_TEMPLATE")
        or (SANDBOX_ONGOING_TEMPLATE if sandbox else DEFAULT_ONGOING_TEMPLATE),
        database_url=env.get("DATABASE_URL") or f"sqlite:///{instance / 'swapline.db'}",
        redis_url=env.get("REDIS_URL") or None,
        encryption_keys=keys,
        instance_path=instance,
        sandbox=sandbox,
        dev=dev,
        smtp_url=_smtp_url(env),
        mail_from=(env.get("SWAPLINE_MAIL_FROM") or "").strip()
        or "Swapline <alerts@localhost>",
    )


def _smtp_url(env: dict) -> str | None:
    """SWAPLINE_SMTP_URL checked for form only; the error never repeats it (it may hold a
    password)."""
    url = (env.get("SWAPLINE_SMTP_URL") or "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ConfigError("SWAPLINE_SMTP_URL is not a URL") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("SWAPLINE_SMTP_URL must be smtp://[user:pass@]host:port or smtps://…")
    return url


def _secret(env: dict, name: str, fallback: str | None) -> str:
    value = (env.get(name) or "").strip()
    if value.lower() in PLACEHOLDERS:
        if fallback is None:
            raise ConfigError(f"{name} is missing or a placeholder; set it (or SWAPLINE_SANDBOX=1)")
        return fallback
    return value


def _encryption_keys(env: dict, instance: Path | None) -> tuple[str, ...]:
    raw = [k.strip() for k in (env.get("SWAPLINE_ENCRYPTION_KEYS") or "").split(",") if k.strip()]
    if not raw:
        if instance is None:
            raise ConfigError("SWAPLINE_ENCRYPTION_KEYS is missing; set Fernet keys, newest first")
        return (_local_key(instance),)
    for number, key in enumerate(raw, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"SWAPLINE_ENCRYPTION_KEYS entry {number} is not a Fernet key"
            ) from None
    return tuple(raw)


def _local_key(instance: Path) -> str:
    """Sandbox/dev only: one Fernet key kept under instance/ so a re-run can read its own data."""
    path = instance / "sandbox-fernet.key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()
