"""Bench-only WSGI app: Swapline's app plus a bare route that does no work (the baseline)."""
from __future__ import annotations

from flask import Flask, Response

from app import create_app


def create_bench_app() -> Flask:
    """Swapline's app from the environment, plus `POST /bench/bare` answering an empty 200."""
    app = create_app()

    @app.post("/bench/bare")
    def bare() -> Response:
        """200 with no work: the cost of gunicorn + Flask alone."""
        return Response(b"", status=200)

    return app
