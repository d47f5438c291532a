"""`flask --app app shop configure|show`: the Settings pages' validation and storage, for operators.

Secrets are read from environment variables named on the command line, never from argv.
"""
from __future__ import annotations

import json
import os

import click
from flask import Blueprint, current_app

from blueprints.settings import form_values, save_settings
from models import db
from models.alert_form import alert_form_values, clean_alerts, save_alerts
from models.settings import (
    OPTIONAL_ORDER_CODES,
    ORDER_CODES,
    RETURN_CODES,
    STALL_DEFAULTS,
    public_view,
    settings_of,
)
from models.shop import get_shop

bp = Blueprint("shop_cli", __name__, cli_group="shop")


def installed_shop(domain: str) -> str:
    """The domain of a shop that installed the app, or a clear error."""
    domain = domain.strip().lower()
    with db.session() as s:
        shop = get_shop(domain, session=s)
    if shop is None or not shop.installed:
        raise click.ClickException(f"{domain} has not installed Swapline (open the app from "
                                   "its Shopify admin first)")
    return domain


def secret_from_env(variable: str | None, option: str) -> str:
    """The value of the environment variable named by an option ('' when no option given)."""
    if variable is None:
        return ""
    value = os.environ.get(variable)
    if not value:
        raise click.ClickException(f"{option}: environment variable {variable} is not set")
    return value


def mapping(text: str, codes: tuple[str, ...], option: str,
            optional: tuple[str, ...] = ()) -> dict[str, str]:
    """'open=200,released=300,...' → {'open': '200', ...}: every code once, `optional` may be
    left out (it is then '', i.e. none)."""
    parts = text.split(",")
    pairs = dict(part.split("=", 1) for part in parts if "=" in part)
    required = set(codes) - set(optional)
    if not required <= set(pairs) <= set(codes) or len(parts) != len(pairs):
        wanted = ", ".join(f"[{c}=N]" if c in optional else f"{c}=N" for c in codes)
        raise click.ClickException(f"{option} needs exactly {wanted}")
    return {code: pairs.get(code, "").strip() for code in codes}


# Required unless only alert options are given (then only the alerts are changed).
ONGOING_OPTIONS = {"warehouse": "--warehouse", "goods_owner_id": "--goods-owner-id",
                   "username": "--username", "password_env": "--password-env",
                   "warehouse_id": "--warehouse-id", "order_statuses": "--order-statuses",
                   "return_statuses": "--return-statuses",
                   "webhook_token_env": "--webhook-token-env"}
ALERT_OPTIONS = {"alert_email": "alert_emails", "alert_webhook_url": "alert_webhook_url",
                 "alert_resolved": "alert_resolved",
                 **{name.removesuffix("_days"): name for name in STALL_DEFAULTS}}


def stall_options(command):
    """--stall-parked, --stall-released, ...: an alert threshold in days each."""
    for name in reversed(STALL_DEFAULTS):
        option = "--" + name.removesuffix("_days").replace("_", "-")
        command = click.option(option, metavar="DAYS",
                               help=f"Alert after this many days (default "
                                    f"{STALL_DEFAULTS[name]}).")(command)
    return command


@bp.cli.command("configure")
@click.argument("shop")
@click.option("--server", default="api", show_default=True, help="Ongoing API server prefix.")
@click.option("--warehouse", help="Warehouse name from the Ongoing URL.")
@click.option("--goods-owner-id", help="Goods Owner ID.")
@click.option("--username", help="The WSI… API user.")
@click.option("--password-env", metavar="VAR", help="Env var with the password.")
@click.option("--warehouse-id", help="Id of the warehouse location.")
@click.option("--order-statuses",
              help="open=N,[returned=N,]released=N,sent=N (returned only if the 3PL has one)")
@click.option("--return-statuses", help="notified=N,returned=N")
@click.option("--webhook-token-env", metavar="VAR",
              help="Env var with the Ongoing webhook X-Auth-Token.")
@click.option("--events-secret-env", metavar="VAR", help="Env var with the return-events secret.")
@click.option("--instant-exchange", type=click.Choice(["on", "off"]), help="Instant Exchange.")
@click.option("--transporter-code", metavar="CODE",
              help="Default Ongoing transporter when the original order is not in Ongoing "
                   "('' clears it).")
@click.option("--transporter-service-code", metavar="CODE", help="Its service ('' clears it).")
@click.option("--way-of-delivery", metavar="CODE", help="Default way of delivery ('' clears it).")
@click.option("--alert-email", metavar="ADDR[,ADDR…]",
              help="Where alert mail goes ('' clears it).")
@click.option("--alert-webhook-url", metavar="URL",
              help="Alert webhook, https to a public address ('' clears it).")
@click.option("--alert-resolved", type=click.Choice(["on", "off"]),
              help="Also alert when an alerted exchange moves on.")
@stall_options
def configure(shop, **options):
    """Validate (live, against Ongoing) and store a shop's settings, like the Settings page.

    With only alert options, only the alert settings are validated and changed."""
    domain = installed_shop(shop)
    alerts = {field: options.pop(name) for name, field in ALERT_OPTIONS.items()}
    alerts = {field: value for field, value in alerts.items() if value is not None}
    ongoing_given = any(options[name] is not None for name in ONGOING_OPTIONS)
    alert_form = {**alert_form_values(settings_of(domain)), **alerts}
    allow_local = current_app.config["SETTINGS"].allow_local_urls
    if alerts and not ongoing_given:
        _fail_on(domain, save_alerts(domain, alert_form, allow_local=allow_local))
        click.echo(f"alert settings saved for {domain}")
        return
    missing = [flag for name, flag in ONGOING_OPTIONS.items() if options[name] is None]
    if missing:
        raise click.UsageError(f"Missing option '{missing[0]}'.")
    if alerts:  # checked before anything is stored: all of it is saved, or nothing
        _fail_on(domain, clean_alerts(alert_form, allow_local=allow_local)[1])
    _fail_on(domain, save_settings(domain, ongoing_form(domain, options))[0])
    if alerts:
        _fail_on(domain, save_alerts(domain, alert_form, allow_local=allow_local))
    click.echo(f"settings saved for {domain}")


def _fail_on(domain: str, errors: dict) -> None:
    if errors:
        for field, message in errors.items():
            click.echo(f"{field}: {message}", err=True)
        raise click.ClickException(f"nothing saved for {domain}")


def ongoing_form(domain: str, o: dict) -> dict:
    """The Settings form as the Ongoing options fill it in (the rest as saved)."""
    current = form_values(settings_of(domain))
    form = {name: "" if value is None else str(value) for name, value in current.items()}
    form.update(ongoing_server=o["server"], ongoing_warehouse=o["warehouse"],
                goods_owner_id=o["goods_owner_id"], ongoing_username=o["username"],
                warehouse_id=o["warehouse_id"],
                password=secret_from_env(o["password_env"], "--password-env"),
                webhook_token=secret_from_env(o["webhook_token_env"], "--webhook-token-env"),
                events_secret=secret_from_env(o["events_secret_env"], "--events-secret-env"),
                instant_exchange=o["instant_exchange"]
                or ("on" if current["instant_exchange"] else ""),
                notify_customer="on" if current["notify_customer"] else "")
    shipping = {"default_transporter_code": o["transporter_code"],
                "default_transporter_service_code": o["transporter_service_code"],
                "default_way_of_delivery": o["way_of_delivery"]}
    form.update({name: value for name, value in shipping.items() if value is not None})
    for code, number in mapping(o["order_statuses"], ORDER_CODES, "--order-statuses",
                                OPTIONAL_ORDER_CODES).items():
        form[f"order_status_{code}"] = number
    for code, number in mapping(o["return_statuses"], RETURN_CODES,
                                "--return-statuses").items():
        form[f"return_status_{code}"] = number
    return form


@bp.cli.command("show")
@click.argument("shop")
def show(shop):
    """Print a shop's non-secret settings as JSON (secrets only as *_set booleans)."""
    domain = shop.strip().lower()
    with db.session() as s:
        if get_shop(domain, session=s) is None:
            raise click.ClickException(f"unknown shop {domain}")
    view = public_view(settings_of(domain), current_app.config["SETTINGS"].app_url)
    click.echo(json.dumps({"shop": domain, **view}, indent=2))
