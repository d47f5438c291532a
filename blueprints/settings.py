"""The Settings pages: the Ongoing connection, warehouse, status codes, webhook and exchanges;
the Notifications tab (alert addresses, webhook URL, thresholds, a test alert)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, render_template, request

from blueprints.pages import embedded, render_page
from clients.ongoing_accounts import Choices, fetch_choices
from jobs.alert_send import send_test_alert
from models import db
from models.alert import LABELS, STALL_THRESHOLDS
from models.alert_form import alert_form_values, clean_alerts, save_alerts
from models.settings import STALL_DEFAULTS, ShopSettings, apply, public_view, settings_of
from models.settings_form import (
    DEFAULT_ORDER_NAMES,
    DEFAULT_RETURN_NAMES,
    OPTIONAL_ORDER_FIELDS,
    ORDER_FIELDS,
    STANDARD_ORDER_NUMBERS,
    check_live,
    clean,
    clean_connection,
    default_status,
)
from models.types import utcnow

bp = Blueprint("settings", __name__, url_prefix="/settings")
FORM_FIELDS = ("ongoing_warehouse", "goods_owner_id", "ongoing_username", "ongoing_server",
               "warehouse_id", "order_status_open", "order_status_returned",
               "order_status_released", "order_status_sent", "return_status_notified",
               "return_status_returned", "order_number_prefix", "instant_exchange",
               "notify_customer", "default_transporter_code",
               "default_transporter_service_code", "default_way_of_delivery", "exchange_tag")


def save_settings(domain: str, form) -> tuple[dict, Choices | None]:
    """Validate every field and check it live against Ongoing; store only when all is well.

    Returns (errors by field, the choices read from Ongoing). Shared with `flask shop configure`.
    """
    current = settings_of(domain)
    values, errors = clean(form, current)
    choices = None
    if not errors:
        choices, errors = fetch_choices(values, current)
    if not errors:
        errors = check_live(values, choices)
    if errors:
        return errors, choices
    with db.session() as s:
        row = s.get(ShopSettings, current.id)
        apply(row, values)
        row.connection_ok_at = utcnow()
    return {}, choices


def form_values(row: ShopSettings) -> dict:
    """What the form shows for saved settings (never a secret)."""
    return {name: getattr(row, name) for name in FORM_FIELDS}


def preselected(choices: Choices | None, values: dict) -> dict:
    """Saved or entered status choices, else the defaults: by standard number, then by text."""
    chosen = dict(values)
    if choices is None:
        return chosen
    # An optional status left empty on purpose must stay empty once the others are chosen.
    untouched = not any(values.get(field) for field in ORDER_FIELDS)
    for code, names in DEFAULT_ORDER_NAMES.items():
        field = f"order_status_{code}"
        if chosen.get(field) or (field in OPTIONAL_ORDER_FIELDS and not untouched):
            continue
        chosen[field] = default_status(choices.order_statuses, names,
                                       STANDARD_ORDER_NUMBERS.get(code))
    for code, names in DEFAULT_RETURN_NAMES.items():
        chosen[f"return_status_{code}"] = chosen.get(f"return_status_{code}") or \
            default_status(choices.return_statuses, names)
    if not chosen.get("warehouse_id") and len(choices.warehouses) == 1:
        chosen["warehouse_id"] = choices.warehouses[0]["id"]
    return chosen


def context(row: ShopSettings, values: dict, *, choices=None, errors=None, **extra) -> dict:
    """Everything the settings templates need."""
    return {"settings": row, "form": preselected(choices, values), "choices": choices,
            "errors": errors or {},
            "urls": public_view(row, current_app.config["SETTINGS"].app_url), **extra}


@bp.get("")
@embedded
def show():
    """The settings page; the lists from Ongoing load right after it (they need live calls)."""
    row = settings_of(g.shop.domain)
    lazy = bool(row.password_set and row.ongoing_warehouse and row.goods_owner_id)
    return render_page("settings.html", "_partials/settings_form.html",
                       **context(row, form_values(row), lazy_choices=lazy),
                       **alerts_context(row, alert_form_values(row)))


def mail_server() -> str | None:
    """Where alert mail goes, as host:port only (the URL may carry a password); None: unset."""
    url = current_app.config["SETTINGS"].smtp_url
    if not url:
        return None
    parts = urlsplit(url)
    default = 465 if parts.scheme == "smtps" else 25
    return f"{parts.scheme}://{parts.hostname}:{parts.port or default}"


def alerts_context(row: ShopSettings, values: dict, *, errors=None, **extra) -> dict:
    """Everything the Notifications form needs."""
    thresholds = [(field, LABELS[condition], STALL_DEFAULTS[field])
                  for condition, field in STALL_THRESHOLDS.items()]
    return {"alerts": values, "alert_errors": errors or {}, "thresholds": thresholds,
            "mail_server": mail_server(), "mail_from": current_app.config["SETTINGS"].mail_from,
            "events_secret_set": row.events_secret_set, **extra}


@bp.post("/notifications")
@embedded
def save_notifications():
    """Save the alert addresses, webhook URL and thresholds (the CLI's validation), or nothing."""
    allow_local = current_app.config["SETTINGS"].allow_local_urls
    errors = save_alerts(g.shop.domain, request.form, allow_local=allow_local)
    row = settings_of(g.shop.domain)
    if errors:
        entered = {name: request.form.get(name, "") for name in alert_form_values(row)}
        return render_template("_partials/notifications_form.html",
                               **alerts_context(row, entered, errors=errors)), 422
    return render_template("_partials/notifications_form.html",
                           **alerts_context(row, alert_form_values(row), saved=True))


@bp.post("/notifications/test")
@embedded
def test_alert():
    """Send a test alert to the saved addresses and URL now; per channel ok or the failure."""
    row = settings_of(g.shop.domain)
    unsaved = _unsaved(row, request.form)
    results = send_test_alert(g.shop.domain)
    return render_template("_partials/test_alert_result.html", results=results, unsaved=unsaved)


def _unsaved(row: ShopSettings, form) -> bool:
    """Whether the form on screen differs from what is saved (the test uses the saved values)."""
    if not form:
        return False
    values, errors = clean_alerts(form, allow_local=True, resolver=lambda *_: [])
    saved = {"alert_emails": row.alert_emails or [], "alert_webhook_url": row.alert_webhook_url,
             "alert_resolved": row.alert_resolved,
             **{name: getattr(row, name) for name in STALL_DEFAULTS}}
    return bool(errors) or values != saved


@bp.get("/choices")
@embedded
def choices():
    """The warehouse and status lists, read live with the saved connection."""
    row = settings_of(g.shop.domain)
    loaded, problems = fetch_choices(form_values(row) | {"password": ""}, row)
    return render_template("_partials/settings_choices.html",
                           **context(row, form_values(row), choices=loaded,
                                     connection_errors=problems))


@bp.app_template_global("saved_status_options")
def saved_status_options(form: dict, name: str) -> list[dict]:
    """A saved status shown as the only option while Ongoing's list is not loaded."""
    value = form.get(name)
    return [{"number": value, "text": "saved"}] if isinstance(value, int) else []


@bp.post("/test-connection")
@embedded
def test_connection():
    """Check the entered credentials live; on success, load the warehouse and status lists."""
    row = settings_of(g.shop.domain)
    values, errors = clean_connection(request.form, row)
    choices = None
    if not errors:
        choices, errors = fetch_choices(values, row)
    entered = {name: request.form.get(name) for name in FORM_FIELDS} | values
    entered = {k: _number(v) for k, v in entered.items()}
    return render_template("_partials/connection_result.html",
                           **context(row, entered, choices=choices, errors=errors))


@bp.post("")
@embedded
def save():
    """Validate and save everything, or nothing; errors are shown beside their fields."""
    errors, choices = save_settings(g.shop.domain, request.form)
    row = settings_of(g.shop.domain)
    if errors:
        entered = {name: _number(request.form.get(name)) for name in FORM_FIELDS}
        html = render_template("_partials/settings_form.html",
                               **context(row, entered, choices=choices, errors=errors))
        return html, 422
    return render_template("_partials/settings_form.html",
                           **context(row, form_values(row), choices=choices, saved=True))


def _number(value):
    """Form text that is a whole number becomes an int, so selects can compare with ids."""
    digits = isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()
    return int(value) if digits else value  # ASCII only: "²".isdigit() but int("²") fails
