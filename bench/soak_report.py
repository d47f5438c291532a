"""What bench.soak prints after the flood: the webhooks sent and answered, the drain, the queue,
the faults as injected and the end-state checks."""
from __future__ import annotations

import http.client
import time

from rq import Worker
from rq.registry import FailedJobRegistry

from bench.load import RESEND_EVERY_S, RESEND_ROUNDS, Flood, request
from bench.processes import from_redis
from bench.report import end_state, percentile, print_checks, scalar, timeline_report
from bench.shops import QUEUE
from bench.soak_faults import FAULTS, Injector, print_faults
from bench.soak_waves import pending_signals, unprocessed
from jobs.queue import jobs


def report(args, flood_: Flood, t: dict, shopify, shops, cases, injector: Injector) -> bool:
    """Print the flood, the drain, the queue, the faults and the end state; True when every
    check holds."""
    print_flood(args, flood_, t)
    print_drain(t)
    connection = jobs().connection
    failed = from_redis(lambda: FailedJobRegistry(QUEUE, connection=connection).get_job_ids(),
                        ["(Redis did not answer)"])
    workers = from_redis(lambda: Worker.all(connection=connection), [])
    done = sum(w.successful_job_count for w in workers)
    since = " (since Redis last started)" if "redis-restart" in injector.faults else ""
    print(f"RQ: {len(workers)} registered workers ran {done} jobs{since}, failed registry: "
          f"{len(failed)} {failed[:5]}")
    print(f"GET /healthz at the end: {healthz(flood_.port)}")
    timeline_report()
    print_faults(injector, connection)
    checks = {k: v for k, v in end_state(shopify, shops, cases).items()
              if not k.startswith("webhook deliveries")}
    checks.update(flood_checks(flood_, t))
    signals = pending_signals()
    checks[f"exchange signals not applied (done_at NULL): {signals}"] = signals == 0
    checks[f"failed RQ jobs: {len(failed)}"] = not failed
    live = [p.pid for p in injector.workers if p.poll() is None]
    registered = {w.pid for w in workers}
    checks[f"live RQ worker processes registered with Redis: "
           f"{sum(pid in registered for pid in live)}/{len(live)}"] = \
        bool(live) and registered >= set(live)
    for name, fault in injector.faults.items():
        checks[f"fault injected: {name} ({FAULTS[name][2]})"] = fault.injected
    print("\nend state:")
    print_checks(checks)
    return all(checks.values())


def healthz(port: int) -> str:
    """The app's own view of its database, Redis and worker heartbeat."""
    try:
        status, body = request(port, "GET", "/healthz")
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    return f"{status} {body.decode(errors='replace').strip()}"


def print_flood(args, flood_: Flood, t: dict) -> None:
    """Webhooks sent and re-sent, their answers, the sustained rate and the ack latency."""
    acks, took = flood_.sustained()
    paced = [w.name for w in flood_.waves if w.paced]
    print(f"\nwebhooks sent: {flood_.sent} first tries ({t['unique']} distinct deliveries + "
          f"{t['dups']} exact duplicates) + {flood_.resent} re-sends of unacknowledged ones")
    print(f"first-try answers: {dict(flood_.statuses)}")
    print(f"re-sends: {flood_.resent} in {flood_.rounds} rounds (every {RESEND_EVERY_S:g} s, at "
          f"most {RESEND_ROUNDS} after a wave), answers: {dict(flood_.resend_statuses)}; "
          f"still unacknowledged: {len(flood_.unacked)}")
    print("200 answers by body: " + ", ".join(
        f"{name} {flood_.outcomes[name]}" for name in ("queued", "duplicate")) +
        "".join(f", {k} {v}" for k, v in flood_.outcomes.items()
                if k not in ("queued", "duplicate")))
    left_out = f"; wave {', '.join(paced)} left out (spread over the faults)" if paced else ""
    print(f"sustained webhook rate: {acks / took if took else 0.0:.0f} acknowledged/s ({acks} "
          f"acks over {took:.2f} s spent sending at full speed, {args.concurrency} client "
          f"threads{left_out})")
    print(f"ack latency (first-try 200s): p50 {percentile(flood_.latencies, 0.50):.1f} ms, "
          f"p99 {percentile(flood_.latencies, 0.99):.1f} ms, "
          f"max {max(flood_.latencies, default=0) * 1000:.1f} ms")
    if flood_.resent:
        print(f"re-sent 200s ({len(flood_.resend_latencies)}): "
              f"p50 {percentile(flood_.resend_latencies, 0.50):.1f} ms, "
              f"p99 {percentile(flood_.resend_latencies, 0.99):.1f} ms")


def print_drain(t: dict) -> None:
    """How long the drain took after wave 3, or why it ended without draining."""
    resending = t["resent_end"] - t["sent_end"]
    if t.get("drained"):
        print(f"drain: {t['drained'] - t['sent_end']:.1f} s from the last webhook of wave 3 "
              f"(first tries; re-sends took {resending:.1f} s more) to an empty queue with "
              f"every exchange completed, every delivery processed, every signal applied")
    else:
        why = "stuck: nothing left to do" if t["drain"] == "stuck" else "NOT drained within " \
            "the cap"
        print(f"drain: {why} ({time.monotonic() - t['sent_end']:.1f} s after the last webhook "
              f"of wave 3)")
    print(f"first webhook -> {'drained' if t.get('drained') else 'end'}: "
          f"{(t.get('drained') or time.monotonic()) - t['start']:.1f} s")


def flood_checks(flood_: Flood, t: dict) -> dict[str, bool]:
    """Every distinct delivery recorded, processed and acknowledged; no 500s."""
    deliveries = scalar("SELECT count(*) FROM webhook_delivery")
    left = unprocessed()
    five_hundreds = flood_.statuses[500] + flood_.resend_statuses[500]
    return {
        f"webhook deliveries recorded: {deliveries}/{t['unique']} distinct, unprocessed: {left}":
            deliveries == t["unique"] and left == 0,
        f"every distinct delivery acknowledged (after re-sends): "
        f"{len(flood_.acked)}/{t['unique']}":
            len(flood_.acked) == t["unique"] == len(flood_.keys) and not flood_.unacked,
        f"webhooks answered 500 (an outage should be a 503): {five_hundreds}":
            five_hundreds == 0,
    }
