"""GET /metrics (Prometheus text format, counters in Redis) and the worker field of /healthz."""
from __future__ import annotations

import math
import os
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Worker

from clients.ongoing_accounts import client_for
from clients.shopify import shopify
from jobs import metrics
from jobs.queue import jobs
from jobs.relay import relay_once
from models import db
from models.exchange import Exchange
from tests.conftest import SHOP
from tests.test_tokens import installed  # noqa: F401 (a fixture)
from tests.test_webhooks_shopify import APPROVE

SAMPLE = re.compile(r"^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$")


@pytest.fixture
def scrape(client):
    """GET /metrics: {sample name with labels: value}, after checking every line's format."""

    def get() -> dict[str, float]:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
        samples = {}
        for line in response.text.splitlines():
            if line.startswith("#"):
                assert re.match(r"^# (HELP|TYPE) [a-z_]+ \S", line), line
                continue
            assert SAMPLE.match(line), line
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
        return samples

    return get


def _exchange(n: int, state: str) -> int:
    with db.session() as s:
        exchange = Exchange(shop_domain=SHOP, return_gid=f"gid://shopify/Return/{n}",
                            order_gid=f"gid://shopify/Order/{n}", order_name=f"#{n}", state=state)
        s.add(exchange)
        s.flush()
        return exchange.id


def test_valid_forged_and_duplicate_webhooks_are_counted(post_webhook, scrape):
    post_webhook("returns/reopen", APPROVE, webhook_id="one")
    post_webhook("returns/reopen", APPROVE, webhook_id="one")
    post_webhook("returns/reopen", APPROVE, secret="forged-secret-" * 5)
    samples = scrape()
    received = 'swapline_webhooks_received_total{outcome="%s",source="shopify"}'
    assert samples[received % "queued"] == 1 and samples[received % "duplicate"] == 1
    assert samples['swapline_webhooks_rejected_total{status="401"}'] == 1
    assert samples["swapline_queue_length"] == 0 and samples["swapline_deliveries_unqueued"] == 1
    assert samples["swapline_deliveries_unprocessed"] == 1  # answered, not processed yet
    relay_once()
    samples = scrape()
    assert samples["swapline_queue_length"] == 1 and samples["swapline_deliveries_unqueued"] == 0


def test_pending_work_is_a_gauge_an_alert_can_watch(app, post_webhook, run_jobs, scrape):
    from jobs.lifecycle import signal

    post_webhook("returns/reopen", APPROVE)
    exchange_id = _exchange(1, "parked")
    signal(exchange_id, "cancel", source="test")
    samples = scrape()
    assert samples["swapline_deliveries_unprocessed"] == 1
    assert samples["swapline_exchange_events_pending"] == 1
    run_jobs()
    samples = scrape()
    assert samples["swapline_deliveries_unprocessed"] == 0
    assert samples["swapline_exchange_events_pending"] == 0


def test_jobs_are_counted_by_outcome(app, post_webhook, run_jobs, scrape, monkeypatch):
    from jobs import lifecycle

    post_webhook("returns/reopen", APPROVE)
    run_jobs()
    exchange_id = _exchange(1, "parked")
    monkeypatch.setattr(lifecycle, "_apply", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        lifecycle.advance(exchange_id, "release")
    samples = scrape()
    assert samples['swapline_jobs_total{job="process_delivery",outcome="ok"}'] == 1
    assert samples['swapline_jobs_total{job="advance",outcome="failed"}'] == 1
    assert samples["swapline_queue_length"] == 0


def test_exchanges_by_state_are_counted_at_scrape_time(app, scrape):
    for n, state in enumerate(["parked", "parked", "needs_attention"]):
        _exchange(n, state)
    samples = scrape()
    assert samples['swapline_exchanges{state="parked"}'] == 2
    assert samples['swapline_exchanges{state="needs_attention"}'] == 1


def test_ongoing_attempts_are_timed_by_method_and_status_class(app, ongoing_account, scrape):
    a = ongoing_account
    client = client_for({"ongoing_server": a.server, "ongoing_warehouse": a.warehouse,
                         "goods_owner_id": a.goods_owner_id, "ongoing_username": a.username,
                         "password": a.password})
    client.list_warehouses()
    samples = scrape()
    series = 'method="GET",status="2xx"'
    assert samples[f"swapline_ongoing_call_seconds_count{{{series}}}"] == 1
    assert samples[f'swapline_ongoing_call_seconds_bucket{{{series},le="+Inf"}}'] == 1
    assert samples[f"swapline_ongoing_call_seconds_sum{{{series}}}"] >= 0


def test_shopify_calls_are_timed_by_operation(installed, scrape):  # noqa: F811
    shopify().graphql(installed, "ShopDetails")
    samples = scrape()
    series = 'operation="ShopDetails",outcome="ok"'
    assert samples[f"swapline_shopify_call_seconds_count{{{series}}}"] == 1
    assert samples[f'swapline_shopify_call_seconds_bucket{{{series},le="10"}}'] == 1


def test_histogram_buckets_are_cumulative(app, scrape):
    for seconds in (0.01, 0.3, 0.3, 42):
        metrics.observe("swapline_ongoing_call_seconds", seconds, method="PUT", status="5xx")
    samples = scrape()
    bucket = 'swapline_ongoing_call_seconds_bucket{method="PUT",status="5xx",le="%s"}'
    assert [samples[bucket % le] for le in ("0.05", "0.25", "0.5", "10", "+Inf")] == [1, 1, 3, 3, 4]
    assert samples['swapline_ongoing_call_seconds_sum{method="PUT",status="5xx"}'] == 42.61


def test_metric_writes_survive_redis_down(app, redis_down, post_webhook):
    # Redis down: the webhook is still recorded and answered, its counter silently lost.
    assert post_webhook("returns/reopen", APPROVE).get_json() == {"status": "queued"}
    metrics.flush()  # a flush to a Redis that is down raises nothing


def test_counts_reach_redis_only_when_flushed(app):
    key = metrics.PREFIX + "swapline_jobs_total"
    metrics.count("swapline_jobs_total", job="j", outcome="ok")
    metrics.count("swapline_jobs_total", job="j", outcome="ok")
    assert jobs().connection.hgetall(key) == {}
    metrics.flush()
    assert jobs().connection.hgetall(key) == {b'job="j",outcome="ok"': b"2"}
    metrics.flush()  # nothing twice
    assert jobs().connection.hgetall(key) == {b'job="j",outcome="ok"': b"2"}


def test_the_buffer_flushes_by_itself_within_a_second_or_two(app):
    key = metrics.PREFIX + "swapline_jobs_total"
    metrics.count("swapline_jobs_total", job="j", outcome="ok")
    deadline = time.monotonic() + 3 * metrics.FLUSH_SECONDS
    while not jobs().connection.hgetall(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs().connection.hgetall(key) == {b'job="j",outcome="ok"': b"1"}


def test_metrics_show_another_process_counts_once_it_flushed(app, scrape):
    metrics.count("swapline_jobs_total", job="j", outcome="ok")  # buffered here, not flushed
    child = os.fork()
    if child == 0:  # another process: its own counts only, never a copy of its parent's buffer
        try:
            metrics.count("swapline_jobs_total", job="j", outcome="ok")
            metrics.flush()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    key = metrics.PREFIX + "swapline_jobs_total"
    assert jobs().connection.hgetall(key) == {b'job="j",outcome="ok"': b"1"}
    assert scrape()['swapline_jobs_total{job="j",outcome="ok"}'] == 2  # render flushes ours


def test_healthz_reports_worker_heartbeat(client):
    assert client.get("/healthz").get_json()["worker"] == "none"
    worker = Worker([jobs().queue], connection=jobs().connection)
    worker.register_birth()
    worker.heartbeat()
    body = client.get("/healthz")
    assert body.status_code == 200 and body.get_json()["worker"] == "ok"
    old = datetime.now(UTC) - timedelta(minutes=5)
    jobs().connection.hset(worker.key, "last_heartbeat", old.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    body = client.get("/healthz")
    assert body.status_code == 200
    assert body.get_json() == {"status": "degraded", "database": "ok", "redis": "ok",
                               "worker": "stale"}


def test_a_histograms_count_is_its_buckets_sum_and_has_no_field(app, scrape):
    """Count = the +Inf bucket: one Redis field fewer per series and flush; a count field an
    older version wrote (always equal to that sum) is ignored."""
    key = metrics.PREFIX + "swapline_ongoing_call_seconds"
    jobs().connection.hincrby(key, 'count::method="GET",status="4xx"', 7)  # an older version's
    for seconds in (0.01, 3):
        metrics.observe("swapline_ongoing_call_seconds", seconds, method="GET", status="4xx")
    metrics.flush()
    fields = {f.decode() for f in jobs().connection.hkeys(key)}
    assert fields == {'b:0.05:method="GET",status="4xx"', 'b:5:method="GET",status="4xx"',
                      'sum::method="GET",status="4xx"', 'count::method="GET",status="4xx"'}
    samples = scrape()
    assert samples['swapline_ongoing_call_seconds_count{method="GET",status="4xx"}'] == 2
    assert samples['swapline_ongoing_call_seconds_bucket{method="GET",status="4xx",le="+Inf"}'] \
        == 2


def test_label_fields_are_made_once_and_are_what_they_were(monkeypatch):
    """observe/count make a label set's fields once (sorted, escaped): the cached fields are the
    ones made afresh, per value as written (1 and True are two label values)."""
    added = []
    monkeypatch.setattr(metrics, "_add", lambda name, kind, fields: added.append(fields))
    monkeypatch.setattr(metrics, "_made", {})
    odd = 'a "quoted"\\path\nline'
    for _ in range(2):  # made, then found
        metrics.observe("swapline_ongoing_call_seconds", 0.1, status="2xx", method="GET")
        metrics.observe("swapline_ongoing_call_seconds", 11, method=odd, status=1)
        metrics.count("swapline_jobs_total", outcome=True, job="j")
        metrics.count("swapline_jobs_total", outcome=1, job="j")
    escaped = 'method="a \\"quoted\\"\\\\path\\nline",status="1"'
    expected = [[("b:0.1:method=\"GET\",status=\"2xx\"", 1), ("sum::method=\"GET\",status=\"2xx\"",
                                                              100)],
                [(f"b:+Inf:{escaped}", 1), (f"sum::{escaped}", 11000)],
                [('job="j",outcome="True"', 1)], [('job="j",outcome="1"', 1)]]
    assert added == expected * 2
    assert len(metrics._made) == 4


def test_the_label_field_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(metrics, "_add", lambda *_: None)
    monkeypatch.setattr(metrics, "_made", {})
    for n in range(metrics.LABEL_SETS + 10):
        metrics.count("swapline_jobs_total", job=f"j{n}", outcome="ok")
    assert len(metrics._made) <= metrics.LABEL_SETS


@pytest.mark.parametrize("seconds", [0, 0.05, 0.0500001, 1, 2.5, 9.99, 10, 10.01, 1e9])
def test_a_duration_goes_to_the_first_bucket_at_or_above_it(monkeypatch, seconds):
    added = []
    monkeypatch.setattr(metrics, "_add", lambda name, kind, fields: added.extend(fields))
    metrics.observe("swapline_ongoing_call_seconds", seconds, method="GET")
    le = next((b for b in metrics.BUCKETS if seconds <= b), math.inf)
    assert added[0] == (f'b:{metrics._number(le)}:method="GET"', 1)
