"""CPU per shared-lock operation: this process's CPU (time.process_time) per acquire + release
of the app's Redis lock (jobs/leases.py LeasedLock), and per six Ongoing calls each holding the
goods owner's lock against the same six in one `serial` block (clients/ongoing_accounts.py),
against a real Redis and the sandbox Ongoing run in a child process (its CPU is not counted).

    .venv/bin/python -m bench.lock_ops [--iterations 5000] [--redis redis://127.0.0.1:6379/0]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from pathlib import Path

from bench.client_calls import _sandboxes
from clients.deps import NO_METRICS
from clients.ongoing import OngoingClient, OngoingCredentials
from clients.ongoing_accounts import Accounts
from jobs.queue import Jobs

CALLS = 6  # create's Ongoing calls


def per_run(iterations: int, run) -> float:
    """µs of this process's CPU per run (after a few warm-up runs)."""
    for _ in range(20):
        run()
    started = time.process_time()
    for _ in range(iterations):
        run()
    return (time.process_time() - started) / iterations * 1e6


def lock_pair(jobs: Jobs):
    name = f"swapline:bench-lock:{os.getpid()}"

    def pair() -> None:
        lock = jobs.lock(name, timeout=30, blocking_timeout=60)
        if not lock.acquire():
            raise RuntimeError("the bench's own lock was taken")
        lock.release()

    return pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    jobs = Jobs(args.redis, Path("instance"))
    mine, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_sandboxes, args=(theirs,),
                                                        daemon=True)
    child.start()
    _, _, template = mine.recv()
    try:
        accounts = Accounts(jobs, NO_METRICS)
        client = OngoingClient(
            OngoingCredentials("api", "benchwh", 7, "WSIbench", "bench-pass"),
            url_template=template, http=accounts.http, serializer=accounts.serializer)

        def lone() -> None:
            for _ in range(CALLS):
                client.list_warehouses()

        def block() -> None:
            with accounts.serial(client.credentials.key):
                lone()

        runs = max(args.iterations // 10, 1)
        for _ in range(3):
            print(f"acquire + release {per_run(args.iterations, lock_pair(jobs)):8.1f} µs CPU;"  # noqa: T201
                  f" {CALLS} Ongoing calls, a lock each {per_run(runs, lone):7.0f} µs,"
                  f" in one serial block {per_run(runs, block):7.0f} µs")
    finally:
        mine.send("done")
        child.join()


if __name__ == "__main__":
    main()
