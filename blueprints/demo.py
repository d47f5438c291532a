"""Sandbox only: the home page's *Run a sample exchange* and its live progress."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, render_template, request

from blueprints.pages import embedded
from jobs.exchange_rules import FINAL_STATES
from models import db
from models.exchange import find_by_return

bp = Blueprint("demo", __name__, url_prefix="/demo")
EXTENSION = "swapline.demo"


def scenario():
    """The running demo's scenario, or 404 outside `make demo`."""
    found = current_app.extensions.get(EXTENSION)
    if found is None or not current_app.config["SETTINGS"].sandbox:
        abort(404)
    return found


@bp.post("/sample-exchange")
@embedded
def sample_exchange():
    """Create a return with an exchange in the sandbox Shopify; Shopify tells Swapline."""
    started = scenario().run_sample()
    return render_template("_partials/sample_progress.html", return_id=started["return_id"],
                           order=started["order"], exchange=None, final_states=FINAL_STATES)


@bp.get("/sample-progress")
@embedded
def sample_progress():
    """Where the sample exchange is; polled until it is completed or cancelled."""
    scenario()
    return_id = request.args.get("return_id", "")
    with db.session() as s:
        exchange = find_by_return(g.shop.domain, return_id, session=s)
    return render_template("_partials/sample_progress.html", return_id=return_id,
                           order=request.args.get("order", ""), exchange=exchange,
                           final_states=FINAL_STATES)
