"""CPU per shared-lock operation: this process's CPU (time.process_time) per acquire + release
of the app's Redis lock (jobs/leases.py LeasedLock), against a real Redis.

    .venv/bin/python -m bench.lock_ops [--iterations 5000] [--redis redis://127.0.0.1:6379/0]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from jobs.queue import Jobs


def per_pair(jobs: Jobs, iterations: int) -> float:
    """µs of this process's CPU per acquire + release (after a few warm-up pairs)."""
    name = f"swapline:bench-lock:{os.getpid()}"

    def pair() -> None:
        lock = jobs.lock(name, timeout=30, blocking_timeout=60)
        if not lock.acquire():
            raise RuntimeError("the bench's own lock was taken")
        lock.release()

    for _ in range(50):
        pair()
    started = time.process_time()
    for _ in range(iterations):
        pair()
    return (time.process_time() - started) / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    jobs = Jobs(args.redis, Path("instance"))
    for _ in range(3):
        print(f"acquire + release {per_pair(jobs, args.iterations):8.1f} µs CPU")  # noqa: T201


if __name__ == "__main__":
    main()
