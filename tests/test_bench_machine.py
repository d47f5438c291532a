"""bench/machine.py: the machine's reference time, the unit that makes CPU figures of runs on
different machines compare."""
from __future__ import annotations

from bench import machine


def test_the_reference_grows_with_the_work_and_takes_the_best_try():
    small, large = machine.reference_ms(rounds=200), machine.reference_ms(rounds=2000)
    assert 0 < small < large


def test_a_figure_is_given_in_reference_units(monkeypatch):
    monkeypatch.setattr(machine, "reference_ms", lambda: 80.0)
    assert machine.line(40.0) == ("machine: the reference work takes 80 ms of CPU here "
                                  "(lower: faster); 40.0 ms per exchange = 0.500 reference units")
    assert machine.line() == "machine: the reference work takes 80 ms of CPU here (lower: faster)"
