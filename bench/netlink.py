"""A TCP link that can be cut: a loopback proxy in front of a real server (PostgreSQL, say).

`cut()` drops every open connection and refuses new ones (connection refused, as when the server
is down or the network is gone); `restore()` accepts again. Used by the database-outage fault of
bench.soak and by tests/test_faults.py. Threads, one pair per connection; loopback only.
"""
from __future__ import annotations

import contextlib
import socket
import threading


class Link:
    """Listens on 127.0.0.1:<port> and forwards each connection to (host, port)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.port = 0
        self.cuts = 0
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut() or close()
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                if self.listener is not listener:  # cut() came while this one was connecting
                    client.close()
                    server.close()
                    continue
                self.open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        with self.lock:
            listener, self.listener = self.listener, None
            sockets = list(self.open)
            self.cuts += 1
        if listener is not None:  # shutdown() wakes the thread blocked in accept(); close alone
            with contextlib.suppress(OSError):  # would leave it accepting on Linux
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            self._drop(sock)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        with self.lock:
            if self.listener is not None:
                return
        self._listen()

    def close(self) -> None:
        self.cut()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"
