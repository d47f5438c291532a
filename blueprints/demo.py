"""Sandbox only: the home page's *Run a sample exchange* (or one that runs out of stock) and its
live progress.

The sample itself is played by the sandbox (sandbox/scenario.py), asked for over HTTP; the app
learns of it from Shopify's webhook, as it would of any return.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, render_template, request

from blueprints.pages import embedded
from clients.sandbox_shopify import start_sample_exchange
from jobs.exchange_rules import FINAL_STATES, NEEDS_ATTENTION
from models import db
from models.exchange import find_by_return

bp = Blueprint("demo", __name__, url_prefix="/demo")
KINDS = ("exchange", "out_of_stock")  # what sandbox/scenario.py plays


def sandbox_only() -> None:
    """404 outside SWAPLINE_SANDBOX=1: real Shopify has no sample to give."""
    if not current_app.config["SETTINGS"].sandbox:
        abort(404)


@bp.post("/sample-exchange")
@embedded
def sample_exchange():
    """Ask the sandbox Shopify for a return with an exchange; Shopify then tells Swapline."""
    sandbox_only()
    kind = request.form.get("kind") or "exchange"
    if kind not in KINDS:
        abort(400)
    started = start_sample_exchange(g.shop.domain, kind)
    if started is None:  # no sample scenario runs for this shop (not `make demo`)
        abort(404)
    return render_template("_partials/sample_progress.html", return_id=started["return_id"],
                           order=started["order"], kind=kind, exchange=None,
                           final_states=FINAL_STATES)


@bp.get("/sample-progress")
@embedded
def sample_progress():
    """Where the sample exchange is; polled until it is completed or cancelled."""
    sandbox_only()
    return_id = request.args.get("return_id", "")
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else "exchange"
    with db.session() as s:
        exchange = find_by_return(g.shop.domain, return_id, session=s)
    # The out-of-stock sample ends where it needs the merchant; the other runs to completed.
    final = (*FINAL_STATES, NEEDS_ATTENTION) if kind == "out_of_stock" else FINAL_STATES
    return render_template("_partials/sample_progress.html", return_id=return_id,
                           order=request.args.get("order", ""), kind=kind, exchange=exchange,
                           final_states=final)
