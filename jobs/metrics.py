"""Counters and latency histograms kept in Redis, so every gunicorn and RQ process adds to one set.

Each metric is one hash, `swapline:metrics:<name>`. A counter's fields are its label sets
(`source="shopify",outcome="queued"`); a histogram's fields are `b:<le>:<labels>` (one counter per
bucket, cumulated at scrape time), `sum::<labels>` (milliseconds, an integer) and
`count::<labels>`. `render()` writes the Prometheus text exposition format (version 0.0.4).
"""
from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable

import redis
from flask import has_app_context

from jobs.queue import jobs

PREFIX = "swapline:metrics:"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)  # seconds
# Name -> (type, help). Only these are written and rendered: a typo fails in tests, not silently.
METRICS = {
    "swapline_webhooks_received_total": ("counter", "Webhooks accepted, by source and outcome."),
    "swapline_webhooks_rejected_total": ("counter", "Webhooks refused, by HTTP status code."),
    "swapline_jobs_total": ("counter", "Delivery and lifecycle jobs run, by job and outcome."),
    "swapline_ongoing_call_seconds": ("histogram", "One Ongoing HTTP attempt, by method and "
                                                   "status class."),
    "swapline_shopify_call_seconds": ("histogram", "One Shopify GraphQL call, by operation and "
                                                   "result."),
}
log = logging.getLogger(__name__)


def count(name: str, **labels: object) -> None:
    """Add one to a counter."""
    _write(name, "counter", lambda pipe: pipe.hincrby(PREFIX + name, _labels(labels), 1))


def observe(name: str, seconds: float, **labels: object) -> None:
    """Record one duration in a histogram."""
    key, field = PREFIX + name, _labels(labels)
    le = next((b for b in BUCKETS if seconds <= b), math.inf)

    def write(pipe: redis.client.Pipeline) -> None:
        pipe.hincrby(key, f"b:{_number(le)}:{field}", 1)
        pipe.hincrby(key, f"sum::{field}", round(seconds * 1000))
        pipe.hincrby(key, f"count::{field}", 1)

    _write(name, "histogram", write)


def counts_job(func: Callable) -> Callable:
    """Decorate a job: count each run in swapline_jobs_total as ok, or failed when it raises."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            result = func(*args, **kwargs)
        except Exception:  # counted, then re-raised untouched for RQ's retries and registry
            count("swapline_jobs_total", job=func.__name__, outcome="failed")
            raise
        count("swapline_jobs_total", job=func.__name__, outcome="ok")
        return result

    return run


def _write(name: str, kind: str, commands: Callable[[redis.client.Pipeline], None]) -> None:
    if METRICS[name][0] != kind:
        raise ValueError(f"{name} is not a {kind}")
    if not has_app_context():  # a client used outside the app (scripts, benches): nothing to add to
        return
    try:
        pipe = jobs().connection.pipeline(transaction=False)
        commands(pipe)
        pipe.execute()
    except redis.RedisError as exc:
        # The one place a Redis error is swallowed on purpose: a metric is never worth failing the
        # webhook, job or outside call it describes. Redis being down shows up in /healthz.
        log.debug("metric %s not recorded: %s", name, exc)


def render(gauges: Iterable[tuple[str, str, dict[str, float]]] = ()) -> str:
    """Every stored counter and histogram, then `gauges` ((name, help, {labels: value}))."""
    pipe = jobs().connection.pipeline(transaction=False)
    for name in METRICS:
        pipe.hgetall(PREFIX + name)
    lines: list[str] = []
    for (name, (kind, help_text)), stored in zip(METRICS.items(), pipe.execute(), strict=True):
        fields = {k.decode(): int(v) for k, v in stored.items()}
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += _histogram(name, fields) if kind == "histogram" else _samples(name, fields)
    for name, help_text, values in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += _samples(name, values)
    return "\n".join(lines) + "\n"


def _histogram(name: str, fields: dict[str, int]) -> list[str]:
    series: dict[str, dict[str, int]] = {}
    for field, value in fields.items():
        kind, le, labels = field.split(":", 2)
        series.setdefault(labels, {})[le or kind] = value
    lines = []
    for labels, values in sorted(series.items()):
        running = 0
        for bucket in (*BUCKETS, math.inf):
            running += values.get(_number(bucket), 0)
            le = f'le="{_number(bucket)}"'
            lines.append(f"{name}_bucket{{{_join(labels, le)}}} {running}")
        braces = f"{{{labels}}}" if labels else ""
        lines.append(f"{name}_sum{braces} {_number(values.get('sum', 0) / 1000)}")
        lines.append(f"{name}_count{braces} {values.get('count', 0)}")
    return lines


def _samples(name: str, values: dict[str, float]) -> list[str]:
    return [f"{name}{{{labels}}} {_number(v)}" if labels else f"{name} {_number(v)}"
            for labels, v in sorted(values.items())]


def labels(**values: object) -> str:
    """The exposition form of a label set (sorted, escaped): a gauge's key in `render`."""
    return _labels(values)


def _labels(values: dict[str, object]) -> str:
    return ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(values.items()))


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _join(*parts: str) -> str:
    return ",".join(p for p in parts if p)


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
