"""Validation of the alert settings, shared by the Settings page and `flask shop configure`.

`clean_alerts(form, allow_local=...)` returns (values, errors by field); nothing is stored unless
errors is empty. `url_problem` is also asked again right before each webhook is sent (the name
may resolve elsewhere by then).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from models.settings import STALL_DEFAULTS

MAX_EMAILS = 10
MAX_URL = 2000
MAX_DAYS = 365
# A practical address check: one @, a dotted domain, no spaces, quotes or angle brackets.
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
                   r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
TRUE = {"1", "on", "true", "yes"}
Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def split_emails(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or newlines; blanks dropped."""
    return [part.strip() for part in re.split(r"[,;\n\r]+", text or "") if part.strip()]


def clean_emails(text: str) -> tuple[list[str], str | None]:
    """(addresses, without duplicates), or an error naming the first bad one."""
    found: list[str] = []
    for address in split_emails(text):
        if not EMAIL.match(address):
            return [], f"{address[:80]!r} is not an email address."
        if address.lower() not in (a.lower() for a in found):
            found.append(address)
    if len(found) > MAX_EMAILS:
        return [], f"Up to {MAX_EMAILS} addresses."
    return found, None


def not_public(address: str) -> bool:
    """Whether an IP address is one no one may aim our server at: private, loopback,
    link-local, reserved, multicast, unspecified or otherwise not globally reachable."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
            or ip.is_multicast or ip.is_unspecified or not ip.is_global)


def url_problem(url: str, *, allow_local: bool, resolver: Resolver = resolve) -> str | None:
    """Why an alert webhook URL may not be used, or None. Outside sandbox/dev (`allow_local`)
    it must be https, and every address its host resolves to must be public."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        return "Enter a URL without spaces, up to 2000 characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "This is not a valid URL."
    schemes = ("https", "http") if allow_local else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        return "The URL must start with https:// and name a host."
    if parts.username is not None or parts.password is not None:
        return "Leave credentials out of the URL; requests are signed instead."
    if allow_local:
        return None
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolver(host, port or 443)
        except (OSError, UnicodeError):
            return f"{host} does not resolve to an address."
    if not addresses:
        return f"{host} does not resolve to an address."
    private = [a for a in addresses if not_public(a)]
    if private:
        return f"{host} resolves to a private or local address ({private[0]}); use a public one."
    return None


def _days(form, name: str, errors: dict) -> int:
    raw = (form.get(name) or "").strip()
    if not raw:
        return STALL_DEFAULTS[name]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_DAYS:
        errors[name] = f"Use a whole number of days from 1 to {MAX_DAYS}."
        return STALL_DEFAULTS[name]
    return int(raw)


def clean_alerts(form, *, allow_local: bool, resolver: Resolver = resolve) -> tuple[dict, dict]:
    """The Notifications fields: addresses, webhook URL, resolved alerts on/off, thresholds."""
    errors: dict[str, str] = {}
    emails, problem = clean_emails(form.get("alert_emails") or "")
    if problem:
        errors["alert_emails"] = problem
    url = (form.get("alert_webhook_url") or "").strip() or None
    if url:
        problem = url_problem(url, allow_local=allow_local, resolver=resolver)
        if problem:
            errors["alert_webhook_url"] = problem
    values = {"alert_emails": emails, "alert_webhook_url": url,
              "alert_resolved": (form.get("alert_resolved") or "").strip().lower() in TRUE,
              **{name: _days(form, name, errors) for name in STALL_DEFAULTS}}
    return values, errors


def alert_form_values(row) -> dict:
    """What the Notifications form shows for saved settings."""
    return {"alert_emails": ", ".join(row.alert_emails or []),
            "alert_webhook_url": row.alert_webhook_url or "",
            "alert_resolved": "on" if row.alert_resolved else "",
            **{name: str(getattr(row, name)) for name in STALL_DEFAULTS}}


def save_alerts(domain: str, form, *, allow_local: bool,
                resolver: Resolver = resolve) -> dict:
    """Validate the Notifications fields and store them all, or nothing; errors by field."""
    from models import db
    from models.settings import ShopSettings, apply, settings_of

    values, errors = clean_alerts(form, allow_local=allow_local, resolver=resolver)
    if errors:
        return errors
    current = settings_of(domain)
    with db.session() as s:
        apply(s.get(ShopSettings, current.id), values)
    return {}
