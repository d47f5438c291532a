"""What bench.lifecycle prints after a run: phase timings, the Sent -> fulfilment latency, the
calls per exchange against the minimum, the queue, the timelines and the end state."""
from __future__ import annotations

import contextlib
import re
from collections import Counter
from datetime import UTC, datetime

from rq import Worker
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import text

from bench.lifecycle_calls import (
    Extra,
    Recorder,
    compare,
    explain,
    per_exchange_spread,
    print_minimum,
)
from bench.report import end_state, percentile, print_checks, timeline_report
from bench.shops import QUEUE, Case, Run, exchanges_by_return
from jobs.queue import jobs
from models import db


def report(args, run: Run, rec: Recorder, shops, cases, t: dict, started: float) -> bool:
    """Print everything; True when the end state holds and every call beyond the minimum is
    explained (a step re-run after a short Shopify bucket, a further page, the periodic
    reconciliation's reads: lifecycle_calls.explain)."""
    n = args.exchanges
    timing_report(n, t, started)
    latency_report(cases)
    print_minimum()
    shopify_calls, ongoing_calls = rec.split()
    extras = compare("Shopify", shopify_calls, 0, n)
    extras += compare("Ongoing", ongoing_calls, 1, n)
    order_ids = {c.ongoing_order_id for c in cases}
    print("  GET /orders/{id} per exchange order: " + per_exchange_spread(
        [(m, p) for m, p, _ in rec.calls[rec.marks[0][1]:]], order_ids))
    checks = queue_report(run)
    read = sum(int(m.group(1)) for m in (re.search(r"(\d+) open exchanges read", outcome)
                                         for outcome in run.reconciliations.values()) if m)
    timeline_report()
    reruns = errors_report()
    unexplained = extras_report(extras, reruns, read)
    checks.update(end_state(rec.shopify, shops, cases))
    print("\nend state:")
    print_checks(checks)
    return all(checks.values()) and not unexplained


def extras_report(extras: list[Extra], reruns: Counter, read: int) -> list[Extra]:
    """Print the calls beyond the minimum, each with what explains it; the unexplained ones."""
    if not extras:
        print("\nno calls beyond the minimum")
        return []
    unexplained = []
    print("\ncalls beyond the minimum:")
    for extra in extras:
        reason = explain(extra, reruns, read)
        print(f"  {extra}: {reason or 'EXTRA, nothing explains it'}")
        if reason is None:
            unexplained.append(extra)
    return unexplained


def errors_report() -> Counter:
    """The steps' errors on the timelines, by step and the outcome's first words; the re-runs
    after a short Shopify bucket (THROTTLED, or the client's own pacing) by step."""
    with db.engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT name, outcome FROM exchange_event WHERE kind = 'error'")).all()
    errors = Counter((name, " ".join(outcome.split()[:6])) for name, outcome in rows)
    for (name, outcome), count in errors.most_common(8):
        print(f"  {count:>4} x {name}: {outcome}")
    return Counter(name for name, outcome in rows if "throttled" in outcome.lower())


def queue_report(run: Run) -> dict[str, bool]:
    """RQ's workers and failed jobs, and the periodic reconciliations seen; the check on them."""
    connection = jobs().connection
    run.note_reconciliations()
    failed = FailedJobRegistry(QUEUE, connection=connection).get_job_ids()
    workers = Worker.all(connection=connection)
    done = sum(w.successful_job_count for w in workers)
    bad = sum(w.failed_job_count for w in workers)
    busy = sum(w.total_working_time for w in workers)
    print(f"\nRQ: {len(workers)} workers ran {done} jobs ({done / run.n:.2f} per exchange), "
          f"{bad} failed; working time {busy:.1f} s ({busy * 1000 / max(done, 1):.1f} ms/job)")
    for job_id in failed[:5]:
        with contextlib.suppress(Exception):
            job = Job.fetch(job_id, connection=connection)
            print(f"  failed {job_id}: {(job.exc_info or '').strip().splitlines()[-1:]}")
    if run.reconciliations:
        print("periodic reconciliation runs seen (each reads Ongoing for every open exchange):")
        for job_id, outcome in sorted(run.reconciliations.items(), key=lambda kv: kv[1]):
            print(f"  {outcome}  [{job_id}]")
    else:
        print("periodic reconciliation: no run with open exchanges during the bench")
    return {f"failed RQ jobs: {len(failed)}": not failed}


def latency_report(cases: list[Case]) -> None:
    """Sent webhook -> Shopify fulfilment, per exchange."""
    found = exchanges_by_return()
    gaps = [(found[(c.shop, c.return_gid)].fulfilled_at - c.sent_at).total_seconds()
            for c in cases if c.sent_at and found[(c.shop, c.return_gid)].fulfilled_at]
    print(f"Sent webhook -> Shopify fulfilment ({len(gaps)} exchanges): "
          f"p50 {percentile(gaps, 0.50):.0f} ms, p99 {percentile(gaps, 0.99):.0f} ms, "
          f"min {min(gaps, default=0) * 1000:.0f} ms, max {max(gaps, default=0) * 1000:.0f} ms")


def timing_report(n: int, t: dict, started: float) -> None:
    """Set-up time, each phase's duration and rate, and end to end."""
    with db.engine().connect() as conn:
        last = conn.execute(text("SELECT max(completed_at) FROM exchange")).scalar_one()
    if isinstance(last, str):  # SQLite hands the raw text to a plain SELECT
        last = datetime.fromisoformat(last)
    last = last.replace(tzinfo=last.tzinfo or UTC)
    end_to_end = last.timestamp() - t["approve_wall"]
    print(f"\nsetup {t['approve'] - started:.1f} s; then, from the first approve webhook:")
    for name, start, posted, end in (("approve -> all parked", "approve", "approve_posted",
                                      "parked"),
                                     ("close -> all released", "close", "close_posted",
                                      "released"),
                                     ("Sent -> all completed", "sent", "sent_posted",
                                      "completed")):
        took = t[end] - t[start]
        print(f"  {name:<22} {took:7.2f} s ({n / took:6.1f} exchanges/s; webhooks posted in "
              f"{t[posted] - t[start]:.2f} s)")
    print(f"end to end: {n} exchanges in {end_to_end:.2f} s (first approve -> last completed) = "
          f"{n / end_to_end:.2f} exchanges/s")


def store_counts() -> tuple[int, Counter]:
    """(transactions the run's PostgreSQL database has committed or rolled back, commands the
    run's Redis has processed so far, by command) ; PostgreSQL's are -1 on SQLite. Everyone's:
    the app's, and the bench's own polls (a few per second)."""
    connection = jobs().connection
    commands = Counter({name.removeprefix("cmdstat_"): int(stats["calls"])
                        for name, stats in connection.info("commandstats").items()})
    engine = db.engine()
    if engine.dialect.name != "postgresql":
        return -1, commands
    with engine.connect() as conn:
        xacts = conn.execute(text(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()")).scalar_one()
    return int(xacts), commands


def store_report(before: tuple[int, Counter], after: tuple[int, Counter], n: int) -> None:
    """PostgreSQL transactions and Redis commands per exchange over the run, and the commands
    that made most of them (which part of RQ, the leases or the metrics to look at)."""
    xacts = f"{(after[0] - before[0]) / n:.1f}" if before[0] >= 0 else "n/a (SQLite)"
    commands = after[1] - before[1]
    print(f"store traffic per exchange (app + the bench's polls): PostgreSQL transactions "
          f"{xacts}, Redis commands {commands.total() / n:.1f}", flush=True)
    print("  Redis commands per exchange, most first: " + ", ".join(
        f"{name} {calls / n:.1f}" for name, calls in commands.most_common(12)), flush=True)
