"""Merchant edits of a return after approval: removeFromReturn (API 2025-07+) as Shopify does it.

Swapline never calls removeFromReturn; the merchant (or another app) does, and Shopify tells
Swapline with `returns/update`. The userErrors follow live 2026-04 answers recorded in the public
repository airhorns/shopify-draft-proxy (fixtures/conformance/…/2026-04/orders/):
- an unknown return: ["returnId"] "Return not found." NOT_FOUND (order-return-status-lifecycle);
- a return that is not OPEN: ["returnId"] "Return status is invalid." INVALID_STATE
  (returnClose-Reopen-Cancel-state-preconditions);
- a quantity of 0: no field, "Quantity must be greater than 0" GREATER_THAN; more than the line
  has left: ["returnLineItems", i, "quantity"] "Return line item has an invalid quantity." INVALID
  (return-quantity-validation);
- removing every line closes the return (order-return-status-lifecycle, removedCase).
Inferred, not recorded: exchange lines answer like return lines (field "exchangeLineItems"), and
only their unprocessed units may go (shopify.dev changelog "remove unprocessed exchange lines from
a return"); an id not on the return is NOT_FOUND on its id field.
"""
from __future__ import annotations

from sandbox.shopify.store import Return, SandboxShop, apply_balance, parse_gid


class UserErrors(ValueError):
    """Shopify answered with userErrors; nothing changed."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['code']}: {e['message']}" for e in errors))
        self.errors = errors


def _error(field: list[str] | None, message: str, code: str) -> dict:
    return {"field": field, "message": message, "code": code}


def remove_from_return(shop: SandboxShop, return_id: str, returned: list[tuple[str, int]],
                       exchanged: list[tuple[str, int]]) -> Return:
    """Take (line id, quantity) pairs off a return; UserErrors when Shopify would refuse."""
    ret = shop.get("returns", return_id, "Return")
    if ret is None:
        raise UserErrors([_error(["returnId"], "Return not found.", "NOT_FOUND")])
    if ret.status != "OPEN":
        raise UserErrors([_error(["returnId"], "Return status is invalid.", "INVALID_STATE")])
    plan = _plan(ret, "returnLineItems", "ReturnLineItem", ret.lines, returned) + \
        _plan(ret, "exchangeLineItems", "ExchangeLineItem", ret.exchanges, exchanged)
    if not plan:
        raise UserErrors([_error(None, "No line items to remove.", "BLANK")])
    for line, quantity in plan:
        line.removed += quantity
    ret.removals = [(line.id, quantity) for line, quantity in plan if line in ret.lines]
    apply_balance(shop.orders[ret.order_id], ret)
    if all(line.quantity == line.removed for line in [*ret.lines, *ret.exchanges]):
        ret.status = "CLOSED"  # nothing left on it: Shopify closes the return
    return ret


def _plan(ret: Return, key: str, kind: str, lines: list, given: list[tuple[str, int]]) -> list:
    plan = []
    for index, (line_id, quantity) in enumerate(given):
        line = next((x for x in lines if x.id == parse_gid(line_id, kind)), None)
        if line is None:
            raise UserErrors([_error([key, str(index), f"{kind[0].lower()}{kind[1:]}Id"],
                                     f"{kind} {line_id} is not on this return.", "NOT_FOUND")])
        if quantity <= 0:
            raise UserErrors([_error(None, "Quantity must be greater than 0", "GREATER_THAN")])
        if quantity > line.unprocessed():
            noun = "Return" if kind == "ReturnLineItem" else "Exchange"
            raise UserErrors([_error([key, str(index), "quantity"],
                                     f"{noun} line item has an invalid quantity.", "INVALID")])
        plan.append((line, quantity))
    return plan
