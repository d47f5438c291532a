"""What the queue itself costs per job: N no-op row jobs enqueued as the relay enqueues them, then
run by the real worker class (SwaplineWorker) in burst mode, in this process; CPU µs, Redis round
trips and commands per job for each half.

    .venv/bin/python -m bench.job_overhead [--jobs 2000] [--batch 1] [--redis redis://…/0]
                                           [--deliveries] [--log]

Without --redis it starts a private redis-server on a unix socket (other benches share the
machine's), so the server's own count of commands (INFO commandstats: a script's inner commands
included, as MONITOR shows them) is this bench's alone. Round trips and commands are counted in
this process too (a script call counts once there). No database: the jobs do nothing.

--deliveries: the jobs are process_delivery's, of deliveries recorded in a fresh PostgreSQL
database (SQLite when none answers) under a topic no handler takes: everything a delivery's job
costs around its step (taking the row, marking it processed, the job's count and log line), the
step itself nothing. --log: the worker logs as in production (INFO, one JSON line per record, to
a sink that counts them) instead of warnings only; the lines per job are reported.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import redis
from flask import Flask, current_app
from redis.connection import AbstractConnection

import logs
from jobs import worker, worker_base
from jobs.queue import EXTENSION, Jobs, enqueue, jobs
from models import db

NOOP = f"{__name__}.noop"
TOPIC = "bench/no-handler"  # a topic no handler takes: the delivery's step is a no-op
LEVEL = "WARNING"  # the worker's logging level: INFO with --log


def noop(n: int) -> int:
    """A row job that does nothing (counted as one of ROW_JOBS for this bench)."""
    return n


class Counts:
    """Round trips and commands this process (or one thread of it) sends to Redis while
    installed."""

    def __init__(self, thread: int | None = None):
        self.trips = self.commands = 0
        self.thread = thread

    def _ours(self) -> bool:
        return self.thread is None or threading.get_ident() == self.thread

    @contextmanager
    def installed(self):
        send, one = AbstractConnection.send_packed_command, AbstractConnection.send_command
        pack_many = AbstractConnection.pack_commands

        def counted_send(conn, command, check_health=True):
            self.trips += self._ours()
            return send(conn, command, check_health)

        def counted_one(conn, *args, **kwargs):
            self.commands += self._ours()
            return one(conn, *args, **kwargs)

        def counted_pack_many(conn, commands):
            commands = list(commands)
            self.commands += len(commands) * self._ours()
            return pack_many(conn, commands)

        AbstractConnection.send_packed_command = counted_send
        AbstractConnection.send_command = counted_one
        AbstractConnection.pack_commands = counted_pack_many
        try:
            yield self
        finally:
            AbstractConnection.send_packed_command, AbstractConnection.send_command = send, one
            AbstractConnection.pack_commands = pack_many


def server_commands(connection: redis.Redis) -> Counter:
    """Calls per command so far, as the server counts them."""
    stats = connection.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()})


@contextmanager
def private_redis():
    """A redis-server of this bench's own on a unix socket in a temporary directory; its URL."""
    folder = Path(tempfile.mkdtemp(prefix="job-overhead-"))
    sock = folder / "redis.sock"
    server = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock),
                               "--save", "", "--appendonly", "no", "--dir", str(folder)],
                              stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def enqueue_all(n: int, offset: int, batch: int) -> None:
    """Enqueue n no-op jobs the way the relay enqueues the deliveries' jobs, `batch` at a time
    (the relay's poll finds 1 to 500 rows)."""
    from jobs import queue

    for start in range(offset, offset + n, batch):
        stop = min(offset + n, start + batch)
        if hasattr(queue, "enqueue_many"):
            queue.enqueue_many(noop, [((i,), f"noop-{i}", "") for i in range(start, stop)])
        else:  # before: one enqueue (one round trip) per delivery
            for i in range(start, stop):
                queue.enqueue(noop, i, job_id=f"noop-{i}")


def record_and_enqueue(n: int, offset: int, batch: int) -> None:
    """Record n deliveries (not timed: the web request's part), then queue their jobs as the
    relay does, `batch` at a time."""
    from jobs.deliveries import enqueue_deliveries
    from models.delivery import record_delivery

    with db.autocommit() as connection:
        ids = [record_delivery(connection, source="bench", delivery_id=f"d{i}",
                               shop_domain="bench.myshopify.com", topic=TOPIC, payload="{}")
               for i in range(offset, offset + n)]
    cpu = time.process_time()
    for start in range(0, n, batch):
        enqueue_deliveries([(i, "bench.myshopify.com") for i in ids[start:start + batch]])
    return time.process_time() - cpu


def run_worker() -> worker.SwaplineWorker:
    w = worker.SwaplineWorker([jobs().queue], connection=jobs().connection, worker_ttl=75)
    w.work(burst=True, with_scheduler=False, logging_level=LEVEL)
    return w


class Sink(logging.StreamHandler):
    """Where the worker's log lines go with --log: /dev/null, line-buffered as a non-interactive
    stderr is (one write per line); the lines counted."""

    lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        super().emit(record)


@contextmanager
def production_logging():
    """The worker's logging as `flask worker` sets it up (logs.setup: the JSON formatter on the
    root logger at INFO), into a Sink; RQ's loggers as they were afterwards."""
    global LEVEL
    root = logging.getLogger()
    saved = (root.level, LEVEL, {name: logging.getLogger(name).level
                                 for name in ("rq.worker", "rq.job")})
    with open(os.devnull, "w", buffering=1, encoding="utf-8") as null:
        sink = Sink(null)
        sink.setFormatter(logs.JsonFormatter())
        root.addHandler(sink)
        root.setLevel(logging.INFO)
        LEVEL = "INFO"
        try:
            yield sink
        finally:
            root.removeHandler(sink)
            root.setLevel(saved[0])
            LEVEL = saved[1]
            for name, level in saved[2].items():
                logging.getLogger(name).setLevel(level)


@contextmanager
def fresh_database():
    """A Flask app's database extensions on a fresh, migrated database, dropped afterwards."""
    from bench.processes import database

    with tempfile.TemporaryDirectory(prefix="job-overhead-db-") as tmp, \
            database(Path(tmp)) as url:
        engines = {db.EXTENSION: db.engine_for(url),
                   db.AUTOCOMMIT: db.engine_for(url, isolation_level="AUTOCOMMIT")}
        try:
            yield url, engines
        finally:
            for engine in engines.values():
                engine.dispose()


def measure(n: int, offset: int, batch: int, deliveries: bool = False,
            sink: Sink | None = None) -> dict[str, float]:
    """Per job: CPU µs, round trips, commands (this process), commands (server) of each half;
    the log lines the worker wrote (with a sink)."""
    connection = jobs().connection
    out: dict[str, float] = {}
    enqueue_step = ((lambda: record_and_enqueue(n, offset, batch)) if deliveries
                    else (lambda: enqueue_all(n, offset, batch)))
    for name, step in (("enqueue", enqueue_step), ("run", run_worker)):
        before = server_commands(connection)
        lines = sink.lines if sink is not None else 0
        with Counts().installed() as counts:
            cpu = time.process_time()
            spent = step()
            cpu = spent if isinstance(spent, float) else time.process_time() - cpu
        after = server_commands(connection)
        if name == "run" and sink is not None:
            out["run lines"] = (sink.lines - lines) / n
        out[f"{name} cpu_us"] = cpu / n * 1e6
        out[f"{name} trips"] = counts.trips / n
        out[f"{name} commands"] = counts.commands / n
        # the INFO calls themselves are 2 of the server's count
        out[f"{name} server"] = (sum((after - before).values()) - 2) / n
    return out


def measure_idle(n: int, offset: int) -> dict[str, float]:
    """Per job of a worker whose queue is empty when it looks (it blocks in its dequeue): one
    job enqueued at a time by another thread, the next once it has finished; the worker's
    (this thread's) CPU µs, round trips and commands."""
    app = current_app._get_current_object()

    def feed() -> None:
        with app.app_context():
            connection = jobs().connection
            for i in range(offset, offset + n):
                job = enqueue(noop, i, job_id=f"noop-{i}")
                while connection.hget(job.key, "status") != b"finished":
                    time.sleep(0.001)

    feeder = threading.Thread(target=feed, daemon=True)
    w = worker.SwaplineWorker([jobs().queue], connection=jobs().connection, worker_ttl=75)
    with Counts(threading.get_ident()).installed() as counts:
        cpu = time.thread_time()
        feeder.start()
        w.work(burst=False, max_jobs=n, with_scheduler=False, logging_level="WARNING")
        cpu = time.thread_time() - cpu
    feeder.join()
    return {"run cpu_us": cpu / n * 1e6, "run trips": counts.trips / n,
            "run commands": counts.commands / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="rows per relay poll (1-500)")
    parser.add_argument("--idle", action="store_true",
                        help="the worker's side alone, each job taken by a blocking dequeue")
    parser.add_argument("--redis", help="this Redis (its database is flushed) instead of a "
                                        "private server")
    parser.add_argument("--deliveries", action="store_true",
                        help="process_delivery jobs of recorded deliveries whose step is a no-op")
    parser.add_argument("--log", action="store_true",
                        help="the worker logs at INFO through the JSON formatter, as deployed")
    args = parser.parse_args()
    worker.enqueue_periodic = lambda: None  # only the bench's jobs
    worker_base.ROW_JOBS = worker_base.ROW_JOBS | {NOOP}
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(private_redis() if args.redis is None else _given(args.redis))
        app = Flask(__name__)
        app.extensions[EXTENSION] = Jobs(url, Path(tempfile.gettempdir()))
        if args.deliveries:
            db_url, engines = stack.enter_context(fresh_database())
            app.extensions.update(engines)
            print(f"database {db_url.split('@')[-1]}")  # noqa: T201
        sink = stack.enter_context(production_logging()) if args.log else None
        with app.app_context():
            jobs().connection.flushdb()
            # warm-up: imports, scripts loaded, queue listed, statements prepared
            measure(200, 10**8, args.batch, args.deliveries, sink)
            if args.idle:
                rounds = [measure_idle(args.jobs, i * args.jobs) for i in range(args.rounds)]
                best = {key: min(r[key] for r in rounds) for key in rounds[0]}
                print(f"{args.jobs} no-op row jobs, each taken by a blocking dequeue, best of "  # noqa: T201
                      f"{args.rounds} rounds, per job: worker thread CPU {best['run cpu_us']:.0f}"
                      f" µs, round trips {best['run trips']:.2f}, commands "
                      f"{best['run commands']:.2f}")
                return
            rounds = [measure(args.jobs, i * args.jobs, args.batch, args.deliveries, sink)
                      for i in range(args.rounds)]
    report(rounds, args.jobs, args.batch, "delivery" if args.deliveries else "no-op row")


@contextmanager
def _given(url: str):
    yield url


def report(rounds: list[dict[str, float]], n: int, batch: int, kind: str) -> None:
    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    lines = [f"{n} {kind} jobs enqueued {batch} at a time, best of {len(rounds)} rounds, "
             "per job:"]
    for half in ("enqueue", "run"):
        lines.append(f"  {half:8} CPU {best[half + ' cpu_us']:7.0f} µs   round trips "
                     f"{best[half + ' trips']:5.2f}   commands {best[half + ' commands']:5.2f}"
                     f" (server: {best[half + ' server']:5.2f})")
    total = {k: best["enqueue " + k] + best["run " + k]
             for k in ("cpu_us", "trips", "commands", "server")}
    lines.append(f"  total    CPU {total['cpu_us']:7.0f} µs   round trips {total['trips']:5.2f}"
                 f"   commands {total['commands']:5.2f} (server: {total['server']:5.2f})")
    if "run lines" in best:
        lines.append(f"  the worker logged {best['run lines']:.2f} lines per job")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    main()
