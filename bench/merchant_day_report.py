"""What bench.merchant_day prints: per class of webhook the rate, CPU and rows stored; the time to
effect; the queue and the drain; the issue's targets as PASS/MISS; the end-state checks."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from rq.registry import FailedJobRegistry
from sqlalchemy import text

from bench import machine
from bench.load import Phase
from bench.merchant_day_traffic import CLASSES, EXCHANGE_SENT, FOREIGN_RETURNED, FOREIGN_SENT
from bench.report import end_state, percentile, print_checks, scalar, timeline_report
from bench.shops import QUEUE, exchanges_by_return
from bench.soak_waves import pending_signals, unprocessed
from jobs.queue import jobs
from models import db
from sandbox.ongoing.store import ORDER_RETURNED, SENT

PEAK_BIN_S = 10.0  # offered peak rate: the busiest this many seconds of the run
EFFECT_P99_TARGET_MS = 2000.0
FOREIGN_MARKS = {FOREIGN_SENT: f"F{SENT}-", FOREIGN_RETURNED: f"F{ORDER_RETURNED}-"}
PROBE_MARKS = (f"P{SENT}-", f"P{ORDER_RETURNED}-")


@dataclass
class Probe:
    kind: str
    n: int
    phase: Phase
    took: float  # first notice sent -> last job done
    web: float  # CPU seconds, idle taken off
    worker: float

    @property
    def ms_each(self) -> float:
        return (self.web + self.worker) * 1000 / self.n


def marked(mark: str) -> int:
    """Ongoing deliveries stored whose order number starts with `mark` (our own bodies)."""
    return scalar("SELECT count(*) FROM webhook_delivery WHERE source = 'ongoing' AND "
                  f"payload LIKE '%\"orderNumber\": \"{mark}%'")


def stored_rows() -> dict[str, int]:
    """webhook_delivery rows per class of the day (probe notices apart)."""
    rows = {kind: marked(mark) for kind, mark in FOREIGN_MARKS.items()}
    probes = sum(marked(mark) for mark in PROBE_MARKS)
    ongoing = scalar("SELECT count(*) FROM webhook_delivery WHERE source = 'ongoing'")
    rows[EXCHANGE_SENT] = ongoing - probes - sum(rows.values())
    for kind in CLASSES:
        if kind.startswith("returns/"):
            rows[kind] = scalar("SELECT count(*) FROM webhook_delivery WHERE source = "
                                f"'shopify' AND topic = '{kind}'")
    rows["probes"] = probes
    return rows


def storage() -> None:
    """Rows by source/topic and by signal event, and the tables' size on PostgreSQL."""
    with db.engine().connect() as conn:
        by_topic = conn.execute(text("SELECT source, topic, count(*) FROM webhook_delivery "
                                     "GROUP BY source, topic ORDER BY 3 DESC")).all()
        signals = conn.execute(text("SELECT event, count(*) FROM exchange_signal GROUP BY "
                                    "event ORDER BY 2 DESC")).all()
        timeline = conn.execute(text("SELECT count(*) FROM exchange_event")).scalar_one()
        sizes = conn.execute(text(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_statio_user_tables WHERE "
            "relname IN ('webhook_delivery', 'exchange_signal', 'exchange_event')")).all() \
            if conn.dialect.name == "postgresql" else []
    print("webhook_delivery rows by source/topic: " +
          ", ".join(f"{s} {t} {n}" for s, t, n in by_topic))
    print("exchange_signal rows by event: " + ", ".join(f"{e} {n}" for e, n in signals) +
          f"; exchange_event (timeline) rows: {timeline}")
    if sizes:
        print("on disk: " + ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in sizes))


def offered_peak(replayer, events, kind: str | None = None) -> float:
    """The busiest PEAK_BIN_S of the schedule, in webhooks/s (all classes or one)."""
    bins = Counter(int((replayer.due(e) - replayer.t0) // PEAK_BIN_S) for e in events
                   if kind is None or e.kind == kind)
    return max(bins.values(), default=0) / PEAK_BIN_S


def print_classes(args, replayer, events, rows: dict[str, int], probes) -> None:
    """One line per class: sent, rates, acks, latency, lateness, rows and probe CPU."""
    cost = {p.kind: p for p in probes}
    print(f"\n{'class':<17} {'sent':>7} {'avg/s':>7} {'peak/s':>7} {'ack p50':>8} "
          f"{'ack p99':>8} {'late p99':>9} {'rows':>7} {'CPU ms/webhook':>15}")
    for kind in CLASSES:
        s = replayer.stats[kind]
        probe = cost.get(kind)
        cpu = f"{probe.ms_each:.2f} (probe)" if probe else "see below"
        print(f"{kind:<17} {s.sent:>7} {s.sent / args.replay_s:>7.1f} "
              f"{offered_peak(replayer, events, kind):>7.1f} "
              f"{percentile(s.latencies, 0.5):>6.1f}ms {percentile(s.latencies, 0.99):>6.1f}ms "
              f"{percentile(s.late, 0.99) / 1000:>8.2f}s {rows[kind]:>7} {cpu:>15}")
    answers = sum((s.statuses for s in replayer.stats.values()), Counter())
    bodies = sum((s.outcomes for s in replayer.stats.values()), Counter())
    print(f"answers: {dict(answers)}; 200 bodies: {dict(bodies)}; re-sends: "
          f"{sum(s.resent for s in replayer.stats.values())}; probe notices stored: "
          f"{rows['probes']}")


def print_cpu(args, replayer, probes, idle, day_cpu, seconds: float, cases) -> None:
    """The probes' cost per class, then the day's CPU and the exchanges' share of it."""
    print(f"\nCPU (gunicorn + RQ worker processes; idle {idle[0] * 1000:.0f} + "
          f"{idle[1] * 1000:.0f} ms/s taken off):")
    for p in probes:
        print(f"  probe {p.kind}: {p.n} alone at {p.n / p.phase.elapsed:.0f}/s acked "
              f"(p50 {percentile(p.phase.latencies, 0.5):.1f} ms, p99 "
              f"{percentile(p.phase.latencies, 0.99):.1f} ms), jobs done in {p.took:.1f} s: "
              f"web {p.web * 1000 / p.n:.2f} + worker {p.worker * 1000 / p.n:.2f} = "
              f"{p.ms_each:.2f} ms CPU each")
    sent = {kind: s.sent for kind, s in replayer.stats.items()}
    total = sum(day_cpu)
    print(f"  the day: {total:.1f} s CPU (web {day_cpu[0]:.1f}, worker {day_cpu[1]:.1f}) over "
          f"{seconds:.1f} s for {sum(sent.values())} webhooks: "
          f"{total * 1000 / max(1, sum(sent.values())):.2f} ms per webhook on average")
    cost = {p.kind: p.ms_each / 1000 for p in probes}
    if len(cost) == 2 and cases:
        foreign = sum(sent[k] * cost[k] for k in cost)
        mine = max(0.0, total - foreign)
        hooks = sum(v for k, v in sent.items() if k not in cost)
        print(f"  foreign notices at the probes' cost: {foreign:.1f} s "
              f"({foreign / total if total else 0:.0%}); the rest, for the {len(cases)} exchanges "
              f"(a remainder: noisy when foreign notices dominate): "
              f"{mine:.1f} s = {mine * 1000 / len(cases):.1f} ms per exchange, "
              f"{mine * 1000 / max(1, hooks):.1f} ms per exchange webhook ({hooks})")
        print(f"  {machine.line(mine * 1000 / len(cases))}")


def effect_latencies(cases) -> tuple[list[float], list[float]]:
    """(Sent posted -> Shopify fulfilment, close posted -> released), seconds, per exchange."""
    found = exchanges_by_return()
    sent, close = [], []
    for case in cases:
        e = found.get((case.shop, case.return_gid))
        if e is not None and case.sent_at and e.fulfilled_at:
            sent.append((e.fulfilled_at - case.sent_at).total_seconds())
        if e is not None and case.closed_at and e.released_at:
            close.append((e.released_at - case.closed_at).total_seconds())
    return sent, close


def report(args, replayer, sampler, probes, idle, day_cpu, outcome: str, times, shopify,
           shops, cases, events) -> bool:
    """Print everything; True when every end-state check holds (targets may MISS)."""
    t0, sent_end, t_end = times
    rows = stored_rows()
    acked = sum(len(s.latencies) for s in replayer.stats.values())
    print(f"\nthe day: {len(events)} webhooks scheduled over {args.replay_s:.0f} s "
          f"(compression {args.compression:.0f}×), sent in {sent_end - t0:.1f} s: "
          f"{acked / (sent_end - t0):.0f} acknowledged/s on average, offered peak "
          f"{offered_peak(replayer, events):.0f}/s over {PEAK_BIN_S:g} s (in real time "
          f"{offered_peak(replayer, events) / args.compression:.1f}/s); closes and exchange "
          f"Sents held for Swapline at most {replayer.held_max} at once")
    print_classes(args, replayer, events, rows, probes)
    print_cpu(args, replayer, probes, idle, day_cpu, t_end - t0, cases)
    storage()
    sent, close = effect_latencies(cases)
    for name, gaps in (("Sent -> fulfilment", sent), ("close -> release", close)):
        print(f"{name} ({len(gaps)} exchanges): p50 {percentile(gaps, 0.5):.0f} ms, p99 "
              f"{percentile(gaps, 0.99):.0f} ms, max {max(gaps, default=0) * 1000:.0f} ms")
    peak, at = sampler.peak()
    day_at = args.start * 3600 + at * args.compression
    print(f"peak RQ queue length: {peak} ({at:.0f} s into the run, {day_at // 3600:02.0f}:"
          f"{day_at % 3600 // 60:02.0f} of the day; {len(sampler.samples)} samples every "
          f"{0.25:g} s)")
    print(f"drain: {outcome}, {t_end - sent_end:.1f} s from the last webhook to an empty queue "
          f"with every exchange completed" if outcome == "drained" else
          f"drain: {outcome} after {t_end - sent_end:.1f} s")
    timeline_report()
    foreign_rows = rows[FOREIGN_SENT] + rows[FOREIGN_RETURNED] + rows["probes"]
    targets = {
        f"rows stored for foreign notices: {foreign_rows} (target 0)": foreign_rows == 0,
        f"Sent -> fulfilment p99 {percentile(sent, 0.99):.0f} ms (target < 2000)":
            percentile(sent, 0.99) < EFFECT_P99_TARGET_MS,
        f"close -> release p99 {percentile(close, 0.99):.0f} ms (target < 2000)":
            percentile(close, 0.99) < EFFECT_P99_TARGET_MS,
    }
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} cores; anything above what this run needs is someone else's)")
    print("\ntargets (issue 12):")
    print_checks(targets, words=("PASS", "MISS"))
    failed = FailedJobRegistry(QUEUE, connection=jobs().connection).get_job_ids()
    checks = {k: v for k, v in end_state(shopify, shops, cases).items()
              if not k.startswith("webhook deliveries")}
    left, signals = unprocessed(), pending_signals()
    unacked = sum(s.unacked for s in replayer.stats.values())
    unsent = len(events) - sum(s.sent for s in replayer.stats.values())
    checks.update({
        f"drained: {outcome}": outcome == "drained",
        f"webhook deliveries unprocessed: {left}": left == 0,
        f"exchange signals not applied: {signals}": signals == 0,
        f"failed RQ jobs: {len(failed)}": not failed,
        f"webhooks never answered 200: {unacked}": unacked == 0,
        f"webhooks never posted (the time limit came first): {unsent}": unsent == 0,
    })
    print("\nend state:")
    print_checks(checks)
    return all(checks.values())
