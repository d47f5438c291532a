"""CPU the app's own processes spent, from /proc/<pid>/stat (utime + stime, plus cutime + cstime
of children already reaped): gunicorn's master and its workers, and the RQ worker processes (RQ's
SimpleWorker runs jobs in-process). The sandboxes run in the bench's process and PostgreSQL and
Redis in their own: none of them is counted."""
from __future__ import annotations

import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 on), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 when it is gone)."""
    fields = _stat(pid)
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS if fields else 0.0


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def gunicorn_master() -> int:
    """This process's child running gunicorn (bench.processes.start_app started it)."""
    for pid in children(os.getpid()):
        try:
            if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise RuntimeError("no gunicorn child process found")


class AppCpu:
    """Reads the web side (gunicorn master + workers) and the worker side (RQ workers)."""

    def __init__(self, worker_pids: list[int]):
        self.master, self.worker_pids = gunicorn_master(), list(worker_pids)

    def read(self) -> tuple[float, float]:
        """(web CPU seconds, worker CPU seconds) so far."""
        web = sum(cpu_seconds(p) for p in [self.master, *children(self.master)])
        return web, sum(cpu_seconds(p) for p in self.worker_pids)

    def idle_rate(self, seconds: float = 3.0) -> tuple[float, float]:
        """CPU seconds per second each side spends with nothing to do (polls, heartbeats)."""
        before = self.read()
        time.sleep(seconds)
        after = self.read()
        return (after[0] - before[0]) / seconds, (after[1] - before[1]) / seconds


def spent(before: tuple[float, float], after: tuple[float, float], idle: tuple[float, float],
          seconds: float) -> tuple[float, float]:
    """(web, worker) CPU seconds between two reads, the idle rate over `seconds` taken off."""
    return (max(0.0, after[0] - before[0] - idle[0] * seconds),
            max(0.0, after[1] - before[1] - idle[1] * seconds))
