"""GET /orders' filters, as Ongoing's spec declares them (its generated clients' `OrdersGetAll`
parameters; reference/ongoing-api.md §1.5, §2.5, exchange-facts.md §6), for the ones Swapline
sends. Any other parameter is refused loudly: the real API ignores what it does not know (a
misspelt filter then silently matches every order), the sandbox must not let that pass.

- `orderNumbers` and `articleNumbers` are repeated keys (a CSV value matches nothing, as live).
- `articleNumbers`: orders with a line for any of these articles.
- `orderStatusFrom` / `orderStatusTo`: inclusive range of status numbers.
- `orderCreatedTimeFrom` / `orderCreatedTimeTo`: inclusive, on the order's createdDate. Ongoing
  asks for UTC with an explicit offset; a time without one is refused here (Ongoing would read it
  in its own zone). No time limit is documented for these (only `orderUpdatedTimeFrom` must be
  at most 2 days old, which the sandbox does not implement).
- Paging: ascending orderId from `orderIdFrom`, at most `maxOrdersToGet` per answer.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sandbox.ongoing.store import Account, Order, Refused

KNOWN = frozenset({"goodsOwnerId", "orderNumber", "orderNumbers", "articleNumbers",
                   "orderStatusFrom", "orderStatusTo", "orderCreatedTimeFrom",
                   "orderCreatedTimeTo", "orderIdFrom", "maxOrdersToGet"})


def _int(args, name: str) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Refused(f"The value '{raw}' is not valid for {name}.") from None


def _time(args, name: str) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"The value '{raw}' is not valid for {name}.") from None
    if value.tzinfo is None:
        raise Refused(f"sandbox: {name} '{raw}' has no UTC offset; Ongoing asks for UTC with an "
                      f"explicit offset.")
    return value.astimezone(UTC)


def created(order: Order) -> datetime:
    return datetime.fromisoformat(order.created.replace("Z", "+00:00"))


def find_orders(account: Account, args) -> list[Order]:
    """The account's orders matching the query string `args` (a werkzeug MultiDict)."""
    unknown = sorted(set(args) - KNOWN)
    if unknown:
        raise Refused(f"sandbox: GET /orders does not implement the parameter {unknown[0]}")
    number, numbers = args.get("orderNumber"), set(args.getlist("orderNumbers"))
    articles = set(args.getlist("articleNumbers"))
    low, high = _int(args, "orderStatusFrom"), _int(args, "orderStatusTo")
    since, until = _time(args, "orderCreatedTimeFrom"), _time(args, "orderCreatedTimeTo")
    first, most = _int(args, "orderIdFrom"), _int(args, "maxOrdersToGet")
    found = [o for o in sorted(account.orders.values(), key=lambda o: o.id)
             if (number is None or o.number == number) and (not numbers or o.number in numbers)
             and (not articles or any(line["articleNumber"] in articles for line in o.lines))
             and (low is None or o.status >= low) and (high is None or o.status <= high)
             and (since is None or created(o) >= since) and (until is None or created(o) <= until)
             and (first is None or o.id >= first)]
    return found[:most] if most else found
