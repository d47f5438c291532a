"""The sandboxes' HTTP server: cheroot's threaded WSGI server, keeping connections alive between
requests as the real Shopify and Ongoing do.

Why not werkzeug's make_server: it answers every request `Connection: close` (it cannot drain a
body the app left unread), so every client call against a sandbox paid a new TCP connection that
production does not pay, and no test ever met a kept connection the server had closed. cheroot
keeps HTTP/1.1 connections open, reads what the app left of a body before the next request, and
closes connections idle longer than `idle_timeout`, as real servers do.
"""
from __future__ import annotations

import io
import logging
import threading

from cheroot import wsgi

IDLE_TIMEOUT = 60.0  # seconds a kept connection may stay idle (nginx's default is 75, IIS's 120)
THREADS = 32  # to start with; grown by as many whenever fewer than SPARE are free
SPARE = 8  # free threads kept, so calls that hang (Ongoing's outage) never starve the others
MAX_THREADS = 1024
EXPIRY_CHECK = 0.1  # seconds between looks for idle connections; stop() waits at most this long
SHUTDOWN_WAIT = 2.0  # seconds stop() gives a request in progress to finish
log = logging.getLogger(__name__)


class _Server(wsgi.Server):
    """cheroot's server, its messages in this module's log instead of on stderr."""

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level, "%s", msg, exc_info=traceback)


class SandboxServer:
    """Serves a WSGI app on host:port from daemon threads once started.

    The port is bound at once (port 0: a free one), so `server_port` and `origin` are known
    before start(). `stopping` is set when stop() begins: a sandbox's deliberate waits (delays,
    hangs) wait on it, so stop() returns promptly even while calls hang."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0,
                 idle_timeout: float = IDLE_TIMEOUT, threads: int = THREADS):
        self.stopping = threading.Event()
        self._growth = threading.Lock()
        self._threads = threads
        self.server = _Server((host, port), None, numthreads=threads,
                              max=MAX_THREADS, request_queue_size=128, timeout=idle_timeout,
                              shutdown_timeout=SHUTDOWN_WAIT)
        self.server.wsgi_app = self._growing(app)
        self.server.keep_alive_conn_limit = None  # as many kept connections as clients keep
        self.server.expiration_interval = min(EXPIRY_CHECK, idle_timeout / 2)
        _in_daemon_thread(self.server.prepare)  # binds, listens, starts the worker threads
        self.server_port: int = self.server.bind_addr[1]
        self.origin = f"http://{host}:{self.server_port}"
        self._thread = threading.Thread(target=self.server.serve, daemon=True,
                                        name=f"sandbox-http-{self.server_port}")

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the port and every kept connection, end the worker threads."""
        self.stopping.set()
        self.server.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=SHUTDOWN_WAIT)

    def wait(self, seconds: float) -> None:
        """Sleep `seconds` in a request, cut short when the server stops."""
        self.stopping.wait(seconds)

    def _growing(self, app):
        """The app, behind a check that adds threads when few are free (a thread serves one
        request at a time, and a sandbox call may hang on purpose for many seconds), and a
        chunked body read whole first: cheroot reads what the app left of a Content-Length body
        before the next request on the connection, but not of a chunked one."""
        pool = self.server.requests

        def serve(environ, start_response):
            if environ.get("wsgi.input_terminated"):  # chunked: no Content-Length
                environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read())
            if pool.idle < SPARE:
                with self._growth:
                    if pool.idle < SPARE:
                        pool.grow(self._threads)
            return app(environ, start_response)

        return serve


def _in_daemon_thread(call) -> None:
    """Run `call` in a daemon thread and wait for it: the threads it starts are daemons too (a
    thread inherits that from the thread that made it), so a sandbox nobody stopped never holds
    up the interpreter's exit (werkzeug's server threads were daemons too)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
