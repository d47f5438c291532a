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
from models.settings import (
    OPTIONAL_ORDER_CODES,
    ORDER_CODES,
    RETURN_CODES,
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


@bp.cli.command("configure")
@click.argument("shop")
@click.option("--server", default="api", show_default=True, help="Ongoing API server prefix.")
@click.option("--warehouse", required=True, help="Warehouse name from the Ongoing URL.")
@click.option("--goods-owner-id", required=True, help="Goods Owner ID.")
@click.option("--username", required=True, help="The WSI… API user.")
@click.option("--password-env", required=True, metavar="VAR", help="Env var with the password.")
@click.option("--warehouse-id", required=True, help="Id of the warehouse location.")
@click.option("--order-statuses", required=True,
              help="open=N,[returned=N,]released=N,sent=N (returned only if the 3PL has one)")
@click.option("--return-statuses", required=True, help="notified=N,returned=N")
@click.option("--webhook-token-env", required=True, metavar="VAR",
              help="Env var with the Ongoing webhook X-Auth-Token.")
@click.option("--events-secret-env", metavar="VAR", help="Env var with the return-events secret.")
@click.option("--instant-exchange", type=click.Choice(["on", "off"]), help="Instant Exchange.")
@click.option("--transporter-code", metavar="CODE",
              help="Default Ongoing transporter when the original order is not in Ongoing "
                   "('' clears it).")
@click.option("--transporter-service-code", metavar="CODE", help="Its service ('' clears it).")
@click.option("--way-of-delivery", metavar="CODE", help="Default way of delivery ('' clears it).")
def configure(shop, server, warehouse, goods_owner_id, username, password_env, warehouse_id,
              order_statuses, return_statuses, webhook_token_env, events_secret_env,
              instant_exchange, transporter_code, transporter_service_code, way_of_delivery):
    """Validate (live, against Ongoing) and store a shop's settings, like the Settings page."""
    domain = installed_shop(shop)
    current = form_values(settings_of(domain))
    form = {name: "" if value is None else str(value) for name, value in current.items()}
    form.update(ongoing_server=server, ongoing_warehouse=warehouse, goods_owner_id=goods_owner_id,
                ongoing_username=username, warehouse_id=warehouse_id,
                password=secret_from_env(password_env, "--password-env"),
                webhook_token=secret_from_env(webhook_token_env, "--webhook-token-env"),
                events_secret=secret_from_env(events_secret_env, "--events-secret-env"),
                instant_exchange=instant_exchange or ("on" if current["instant_exchange"] else ""),
                notify_customer="on" if current["notify_customer"] else "")
    shipping = {"default_transporter_code": transporter_code,
                "default_transporter_service_code": transporter_service_code,
                "default_way_of_delivery": way_of_delivery}
    form.update({name: value for name, value in shipping.items() if value is not None})
    for code, number in mapping(order_statuses, ORDER_CODES, "--order-statuses",
                                OPTIONAL_ORDER_CODES).items():
        form[f"order_status_{code}"] = number
    for code, number in mapping(return_statuses, RETURN_CODES, "--return-statuses").items():
        form[f"return_status_{code}"] = number
    errors, _ = save_settings(domain, form)
    if errors:
        for field, message in errors.items():
            click.echo(f"{field}: {message}", err=True)
        raise click.ClickException(f"nothing saved for {domain}")
    click.echo(f"settings saved for {domain}")


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
