"""Counters and latency histograms kept in Redis, so every gunicorn and RQ process adds to one set.

Each metric is one hash, `swapline:metrics:<name>`. A counter's fields are its label sets
(`source="shopify",outcome="queued"`); a histogram's fields are `b:<le>:<labels>` (one counter per
bucket, cumulated at scrape time) and `sum::<labels>` (milliseconds, an integer). Its count is the
+Inf bucket, the sum of its buckets: no field of its own (a `count::<labels>` field written by an
older version is ignored; it always equalled that sum). `render()` writes the Prometheus text
exposition format (version 0.0.4).

Adding costs no Redis round trip: `count` and `observe` add to a buffer in this process, which a
thread writes to Redis in one pipeline every FLUSH_SECONDS, at exit, and before this process
renders /metrics. A process killed (SIGKILL, OOM) loses what it added in its last FLUSH_SECONDS;
a flush that finds Redis down drops its counts, as a direct write would have.
"""
from __future__ import annotations

import atexit
import bisect
import functools
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

import redis
from flask import has_app_context

from jobs.queue import jobs

PREFIX = "swapline:metrics:"
FLUSH_SECONDS = 1.0
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
KEYS = {name: PREFIX + name for name in METRICS}
LABEL_SETS = 1024  # label sets whose fields are kept made: a few dozen in practice
log = logging.getLogger(__name__)
_made: dict[tuple, tuple[str, ...]] = {}  # label names and str(values) -> fields


def count(name: str, **labels: object) -> None:
    """Add one to a counter."""
    _add(name, "counter", [(_fields(labels)[-1], 1)])


def observe(name: str, seconds: float, **labels: object) -> None:
    """Record one duration in a histogram."""
    fields = _fields(labels)
    bucket = bisect.bisect_left(BUCKETS, seconds)  # the first `le` at or above: +Inf past all
    _add(name, "histogram", [(fields[bucket], 1), (fields[-2], round(seconds * 1000))])


def _fields(labels: dict[str, object]) -> tuple[str, ...]:
    """A label set's hash fields, made once (sorting and escaping cost more than the rest of a
    call): each bucket's (BUCKETS, +Inf), the histogram sum's, and the counter's."""
    key = (*labels, *map(str, labels.values()))  # by str(value), as written: 1 and True differ
    made = _made.get(key)
    if made is None:
        field = _labels(labels)
        made = (*(f"b:{_number(le)}:{field}" for le in (*BUCKETS, math.inf)), f"sum::{field}",
                field)
        if len(_made) >= LABEL_SETS:
            _made.clear()  # an unexpected stream of new values must not grow it without end
        _made[key] = made
    return made


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


class Buffer:
    """Increments added in this process and not yet in Redis, per Redis connection.

    Its thread starts on first use and again after a fork (a forked child neither inherits its
    parent's thread nor re-sends its parent's counts)."""

    def __init__(self, every: float = FLUSH_SECONDS):
        self.every = every
        self._forget()
        os.register_at_fork(after_in_child=self._forget)
        atexit.register(self.flush)

    def _forget(self) -> None:
        self._guard = threading.Lock()
        self._pending: dict[int, tuple[redis.Redis, Counter]] = {}
        self._running = False

    def add(self, connection: redis.Redis, increments: Iterable[tuple[str, str, int]]) -> None:
        with self._guard:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, daemon=True, name="swapline-metrics").start()
            _, pending = self._pending.setdefault(id(connection), (connection, Counter()))
            for key, field, amount in increments:
                pending[key, field] += amount

    def flush(self, connection: redis.Redis | None = None) -> None:
        """Write the buffered increments (only `connection`'s when given) to Redis."""
        with self._guard:
            if connection is None:
                taken, self._pending = list(self._pending.values()), {}
            else:
                taken = [self._pending.pop(id(connection), (connection, Counter()))]
        for target, pending in taken:
            if not pending:
                continue
            try:
                pipe = target.pipeline(transaction=False)
                for (key, field), amount in pending.items():
                    pipe.hincrby(key, field, amount)
                pipe.execute()
            except redis.RedisError as exc:
                # The one place a Redis error is swallowed on purpose: a metric is never worth
                # failing anything over. Redis being down shows up in /healthz.
                log.debug("%d metric fields not recorded: %s", len(pending), exc)

    def discard(self) -> None:
        """Forget every buffered increment (a test starting on a flushed Redis)."""
        with self._guard:
            self._pending = {}

    def _run(self) -> None:
        while True:
            time.sleep(self.every)
            self.flush()


BUFFER = Buffer()


def flush() -> None:
    """Write this process's buffered counts to Redis now (tests; render does it by itself)."""
    BUFFER.flush()


def _add(name: str, kind: str, fields: list[tuple[str, int]]) -> None:
    if METRICS[name][0] != kind:
        raise ValueError(f"{name} is not a {kind}")
    if not has_app_context():  # a client used outside the app (scripts, benches): nothing to add to
        return
    key = KEYS[name]
    BUFFER.add(jobs().connection, [(key, field, n) for field, n in fields])


def render(gauges: Iterable[tuple[str, str, dict[str, float]]] = ()) -> str:
    """Every stored counter and histogram (this process's buffer written first), then `gauges`
    ((name, help, {labels: value}))."""
    BUFFER.flush(jobs().connection)
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
        lines.append(f"{name}_count{braces} {running}")
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
