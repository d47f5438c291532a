"""bench/cpu.py, the one /proc reader of the benches: it counts this process's gunicorn and RQ
worker children with their descendants (reaped ones too) by role, and nothing else."""
from __future__ import annotations

import subprocess
import sys
import time

from bench.cpu import AppCpu, CpuMeter, role_of, sample, spent

BURN = ("import time, subprocess, sys\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\n"
        # a child that burns and is reaped: its CPU shows in our cutime
        "subprocess.run([sys.executable, '-c', 'import time\\nt = time.process_time()\\n"
        "while time.process_time() - t < 0.3: pass'])\n"
        "time.sleep(30)\n")


def _start(*tag: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BURN, *tag])


def _wait_for(role: str, at_least: float) -> dict[str, float]:
    deadline = time.monotonic() + 20
    while (found := sample())[role] < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_roles_come_from_the_command_line():
    assert role_of("/venv/bin/gunicorn --workers 2 app:create_app()") == "web"
    assert role_of("/venv/bin/python -m flask --app app worker") == "worker"
    assert role_of("/usr/bin/redis-server --port 6380") is None


def test_a_worker_child_is_counted_with_its_reaped_child_and_nothing_else_is():
    before = sample()
    worker, other = _start("worker"), _start("bystander")
    try:
        found = _wait_for("worker", before["worker"] + 0.55)
        assert found["worker"] - before["worker"] >= 0.55  # 0.3 s own + 0.3 s reaped child
        assert found["web"] == before["web"]  # the bystander is no role of ours
        assert AppCpu().read()[1] >= found["worker"]  # the same reader, as (web, worker)
    finally:
        for proc in (worker, other):
            proc.kill()
            proc.wait()


def test_spent_takes_the_idle_rate_off_and_never_goes_below_zero():
    assert spent((1.0, 2.0), (1.5, 4.0), (0.1, 0.5), 2.0) == (0.3, 1.0)
    assert spent((1.0, 2.0), (1.0, 2.0), (0.1, 0.1), 2.0) == (0.0, 0.0)


def test_the_meter_says_how_much_of_a_run_was_idle(capsys):
    meter = CpuMeter(samples=[{"web": 0.0, "worker": 0.0}, {"web": 1.0, "worker": 3.0}],
                     times=[100.0, 110.0], idle=(0.01, 0.02))
    assert meter.report(["approve"], 10) == {"approve": 400.0, "total": 400.0}
    idle_line = capsys.readouterr().out.splitlines()[-1].split()
    # 10 ms/s web and 20 ms/s worker over 10 s, shared by 10 exchanges
    assert idle_line[5:8] == ["10.0", "20.0", "30.0"]
