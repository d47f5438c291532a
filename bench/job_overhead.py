"""What the queue itself costs per job: N no-op row jobs enqueued as the relay enqueues them, then
run by the real worker class (SwaplineWorker) in burst mode, in this process; CPU µs, Redis round
trips and commands per job for each half.

    .venv/bin/python -m bench.job_overhead [--jobs 2000] [--batch 1] [--redis redis://…/0]

Without --redis it starts a private redis-server on a unix socket (other benches share the
machine's), so the server's own count of commands (INFO commandstats: a script's inner commands
included, as MONITOR shows them) is this bench's alone. Round trips and commands are counted in
this process too (a script call counts once there). No database: the jobs do nothing.
"""
from __future__ import annotations

import argparse
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

from jobs import worker, worker_base
from jobs.queue import EXTENSION, Jobs, enqueue, jobs

NOOP = f"{__name__}.noop"


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


def run_worker() -> worker.SwaplineWorker:
    w = worker.SwaplineWorker([jobs().queue], connection=jobs().connection, worker_ttl=75)
    w.work(burst=True, with_scheduler=False, logging_level="WARNING")
    return w


def measure(n: int, offset: int, batch: int) -> dict[str, float]:
    """Per job: CPU µs, round trips, commands (this process), commands (server) of each half."""
    connection = jobs().connection
    out: dict[str, float] = {}
    for name, step in (("enqueue", lambda: enqueue_all(n, offset, batch)), ("run", run_worker)):
        before = server_commands(connection)
        with Counts().installed() as counts:
            cpu = time.process_time()
            step()
            cpu = time.process_time() - cpu
        after = server_commands(connection)
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
    args = parser.parse_args()
    worker.enqueue_periodic = lambda: None  # only the bench's jobs
    worker_base.ROW_JOBS = worker_base.ROW_JOBS | {NOOP}
    with (private_redis() if args.redis is None else _given(args.redis)) as url:
        app = Flask(__name__)
        app.extensions[EXTENSION] = Jobs(url, Path(tempfile.gettempdir()))
        with app.app_context():
            jobs().connection.flushdb()
            measure(200, 10**8, args.batch)  # warm-up: imports, scripts loaded, queue listed
            if args.idle:
                rounds = [measure_idle(args.jobs, i * args.jobs) for i in range(args.rounds)]
                best = {key: min(r[key] for r in rounds) for key in rounds[0]}
                print(f"{args.jobs} no-op row jobs, each taken by a blocking dequeue, best of "  # noqa: T201
                      f"{args.rounds} rounds, per job: worker thread CPU {best['run cpu_us']:.0f}"
                      f" µs, round trips {best['run trips']:.2f}, commands "
                      f"{best['run commands']:.2f}")
                return
            rounds = [measure(args.jobs, i * args.jobs, args.batch) for i in range(args.rounds)]
    report(rounds, args.jobs, args.batch)


@contextmanager
def _given(url: str):
    yield url


def report(rounds: list[dict[str, float]], n: int, batch: int) -> None:
    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    lines = [f"{n} no-op row jobs enqueued {batch} at a time, best of {len(rounds)} rounds, "
             "per job:"]
    for half in ("enqueue", "run"):
        lines.append(f"  {half:8} CPU {best[half + ' cpu_us']:7.0f} µs   round trips "
                     f"{best[half + ' trips']:5.2f}   commands {best[half + ' commands']:5.2f}"
                     f" (server: {best[half + ' server']:5.2f})")
    total = {k: best["enqueue " + k] + best["run " + k]
             for k in ("cpu_us", "trips", "commands", "server")}
    lines.append(f"  total    CPU {total['cpu_us']:7.0f} µs   round trips {total['trips']:5.2f}"
                 f"   commands {total['commands']:5.2f} (server: {total['server']:5.2f})")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    main()
