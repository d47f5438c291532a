"""Structured logging: one JSON object per line, with shop and ids, secrets scrubbed."""
from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import jsoncodec

CONTEXT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("swapline_log", default=None)
FIELDS = ("shop", "delivery_id", "job_id", "topic", "exchange_id", "request_id")
# Shopify token prefixes and bearer/basic credentials, wherever they appear in a message.
TOKEN_PATTERN = re.compile(
    r"(shp(?:at|ua|ca|ss|rt)_[A-Za-z0-9]+|sandbox_(?:at|rt)_[A-Za-z0-9_-]+|"
    r"(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+|"
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"  # JWTs, e.g. ?id_token= in a URL
)
_secrets: set[str] = set()


@contextmanager
def context(**values) -> Iterator[None]:
    """Add fields (shop, delivery_id, ...) to every log line inside the block."""
    token = bind(**values)
    try:
        yield
    finally:
        CONTEXT.reset(token)


def bind(**values) -> contextvars.Token:
    """Add fields for the rest of the current request or job; `unbind` with the token."""
    added = {k: v for k, v in values.items() if v is not None}
    return CONTEXT.set({**(CONTEXT.get() or {}), **added})


def unbind(token: contextvars.Token) -> None:
    CONTEXT.reset(token)


def scrub(text: str) -> str:
    """Remove configured secret values and anything shaped like a token."""
    for secret in _secrets:
        text = text.replace(secret, "[redacted]")
    return TOKEN_PATTERN.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                "logger": record.name, "msg": record.getMessage()}
        line.update(CONTEXT.get() or {})
        for name in FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        # ASCII (non-ASCII escaped), NaN as NaN, anything else as its str(), as json.dumps did
        return scrub(jsoncodec.dumps_text(line, ensure_ascii=True, allow_nan=True, default=str))


def setup(secrets: list[str], level: int | str = logging.INFO) -> None:
    """Install the JSON handler on the root logger once; remember secrets to scrub."""
    _secrets.update(s for s in secrets if s and len(s) >= 6)
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "alembic.runtime.plugins"):  # a line per call / per plugin is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
