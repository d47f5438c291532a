"""Helpers of the alert tests: a local HTTP server for the alert webhook that answers a given
sequence of statuses, and exchanges written straight into a stalled state."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from models import db
from models.exchange import Exchange
from models.types import utcnow


@dataclass
class Hook:
    """What the alert webhook server received: (headers, raw body) per request."""

    statuses: list[int]
    received: list[tuple[dict, bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/alerts"

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def start(self) -> Hook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((dict(self.headers), body))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def stalled_exchange(domain: str, state: str, *, days: float, number: int = 1001,
                     **fields) -> int:
    """An exchange in `state` whose clock (the state's own moment) started `days` ago."""
    ago = utcnow() - timedelta(days=days)
    moments = {"parked": {"updated_at": ago}, "released": {"released_at": ago},
               "fulfilled": {"fulfilled_at": ago, "balance": "5.00", "currency": "EUR"},
               "completed": {"return_closed_at": ago, "ongoing_return_order_id": 77},
               "needs_attention": {}}
    with db.session() as s:
        row = Exchange(shop_domain=domain, return_gid=f"gid://shopify/Return/{number}",
                       order_gid=f"gid://shopify/Order/{number}", order_name=f"#{number}",
                       state=state, **{**moments[state], **fields})
        s.add(row)
        s.flush()
        return row.id
