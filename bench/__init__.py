"""Swapline's benchmarks (numbers printed, nothing asserted); run each from the project root with
`python -m bench.<name>`: webhook_ingest, lifecycle, soak, merchant_day.

Shared parts: processes (PostgreSQL, Redis, sandboxes, gunicorn, RQ workers; start-up, readiness,
cleanup), shops (the shops and exchanges set up in the sandboxes, and the app's view of them),
load (signed webhook posting, pacing, re-sends), report (percentiles, checks, logs, timelines).
"""
