"""The demo's own start-up path in-process (sandboxes + app + a burst worker): the sample
exchange goes all the way to completed."""
from __future__ import annotations

import socket
import threading
import time

from sqlmodel import select
from werkzeug.serving import make_server

from app import create_app
from config import SANDBOX_API_KEY, SANDBOX_API_SECRET
from demo import DEMO_SHOP, start_demo
from sandbox.shopify import mint_session_token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_in_process(tmp_path, redis_url):
    """(app, its web server, the started demo): what `make demo` starts, in this process on free
    ports, on a flushed Redis database."""
    from jobs.queue import jobs

    app = create_app({"SWAPLINE_SANDBOX": "1", "SWAPLINE_INSTANCE_PATH": str(tmp_path),
                      "REDIS_URL": redis_url,
                      "SHOPIFY_API_ORIGIN": f"http://127.0.0.1:{_free_port()}",
                      "ONGOING_API_URL_TEMPLATE":
                          f"http://127.0.0.1:{_free_port()}/{{server}}/{{warehouse}}/api/v1"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with app.app_context():
        jobs().connection.flushdb()
    return app, server, start_demo(app, f"http://127.0.0.1:{server.server_port}")


def test_sample_exchange_runs_to_completed_in_process(tmp_path, redis_url):
    from jobs.queue import jobs
    from jobs.worker import run_burst_in_process
    from models import db
    from models.exchange import Exchange

    app, server, demo = demo_in_process(tmp_path, redis_url)
    try:
        token = mint_session_token(DEMO_SHOP, SANDBOX_API_KEY, SANDBOX_API_SECRET)
        response = app.test_client().post("/demo/sample-exchange", headers={
            "Authorization": f"Bearer {token}", "HX-Request": "true"})
        assert response.status_code == 200 and b"sample-state" in response.data
        deadline, seen = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            run_burst_in_process(app)
            with app.app_context(), db.session() as s:
                exchange = s.exec(select(Exchange)).first()
            if exchange is not None and (not seen or seen[-1] != exchange.state):
                seen.append(exchange.state)
            if exchange is not None and exchange.state in ("completed", "needs_attention"):
                break
            time.sleep(0.3)
        assert seen and seen[-1] == "completed", (seen, exchange and exchange.attention_reason)
        assert exchange.tracking_number and exchange.collection == "captured"
        assert "parked" in seen or "released" in seen  # it was watched on its way through
    finally:
        demo.stop()
        server.shutdown()
        with app.app_context():
            jobs().connection.flushdb()
