"""Sandbox Shopify's data and rules: variants, orders, returns, fulfillment orders and payments.

Plain data without Flask, shared by the GraphQL resolvers (graphql_*.py) and the test hooks
(hooks.py). Rules, as Shopify applies them:
- Workflow per shop. "processing" (2025-07+, the default): a return's exchange line items stay
  unprocessed (no order line items, no fulfillment order) until returnProcess processes them; the
  new fulfillment order is ON_HOLD (AWAITING_PAYMENT, placed by Shopify) only when the buyer owes
  a balance. "legacy": they are processed when the return opens and their fulfillment order is born
  ON_HOLD with AWAITING_RETURN_ITEMS (placed by Shopify, not released by closing the return).
- Balance = processed exchange value - returned value; when positive, the order's totalOutstanding
  grows by it. An order whose capture_mode is "authorization" gets an AUTHORIZATION for the
  balance when the return opens (the customer's card, authorized by the returns portal).
- When a payment brings totalOutstanding to zero or below, Shopify's own AWAITING_PAYMENT holds are
  released when the shop's `awaiting_payment_lifts_on_payment` is on (the default); off, they stay
  until someone releases them. No source says which Shopify does (reference/exchange-facts.md §2),
  so the lifecycle tests run both.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

WORKFLOWS = ("legacy", "processing")
CAPTURE_MODES = ("authorization", "vaulted", "none")
AUTHORIZATION_DAYS = 7  # Shopify Payments authorizations expire after 7 days
GID = re.compile(r"^gid://shopify/(\w+)/(\d+)(\?.*)?$")
_ids = itertools.count(1001)  # one sequence for every kind, unique across the process


def next_id() -> int:
    return next(_ids)


def reseed_ids(start: int) -> None:
    """Start the ids at `start` (the demo: a new run never reuses an id an earlier run gave)."""
    global _ids
    _ids = itertools.count(start)


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


class InvalidId(ValueError):
    """Not a Shopify GID: Shopify answers with a top-level GraphQL error."""


class ResourceNotFound(LookupError):
    """An unknown id where Shopify answers `Invalid id: <gid>` (RESOURCE_NOT_FOUND), data null."""


class OutOfWindow(LookupError):
    """An order older than 60 days asked for without read_all_orders, on a shop whose switch
    says Shopify answers with a top-level error (`order` null beside it)."""


class UserError(ValueError):
    """What Shopify refuses with a userError; the hooks raise it with Shopify's field and code."""

    def __init__(self, message: str, field: list[str] | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.field, self.code = message, field, code


class Refused(Exception):
    """The sandbox cannot answer this request faithfully: HTTP 400 with the message, logged."""


def parse_gid(value: str | int, kind: str) -> int | None:
    """The number in a `gid://shopify/<kind>/<n>` (an int passes); None for another kind."""
    if isinstance(value, int):
        return value
    match = GID.match(str(value))
    if match is None:
        raise InvalidId(f"Invalid global id '{value}'")
    return int(match.group(2)) if match.group(1) == kind else None


def money(amount: Decimal) -> str:
    """Shopify's `Money` scalar and its messages: two decimals ("100.57")."""
    return f"{amount:.2f}"


def decimal_text(amount: Decimal) -> str:
    """Shopify's `Decimal` scalar (MoneyV2.amount) as live answers write it: "12.5", "16.0",
    "0.0" (recordings in airhorns/shopify-draft-proxy, payments/order-capture-validation.json)."""
    text = format(Decimal(amount).normalize(), "f")
    return text if "." in text else f"{text}.0"


def now_iso(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Variant:
    id: int
    sku: str
    price: Decimal
    title: str


@dataclass
class LineItem:
    id: int
    variant: Variant
    quantity: int
    price: Decimal


@dataclass
class Transaction:
    id: int
    kind: str  # SALE | AUTHORIZATION | CAPTURE
    amount: Decimal
    parent_id: int | None = None
    status: str = "SUCCESS"
    gateway: str = "shopify_payments"
    created_at: str = field(default_factory=now_iso)
    expires_at: str | None = None  # authorizations only
    closed: bool = False  # an authorization captured once (not multi-capturable) is settled


@dataclass
class Hold:
    id: int
    reason: str
    handle: str
    by_app: bool  # placed by the requesting app (Swapline), not by Shopify
    notes: str | None = None


@dataclass
class FulfillmentOrderLine:
    id: int
    line_item: LineItem
    total: int
    remaining: int


@dataclass
class FulfillmentOrder:
    id: int
    order_id: int
    lines: list[FulfillmentOrderLine]
    status: str = "OPEN"  # OPEN | IN_PROGRESS | ON_HOLD | CLOSED | CANCELLED
    holds: list[Hold] = field(default_factory=list)
    other_service: bool = False  # assigned to another fulfillment service's location

    def actions(self) -> list[str]:
        """supportedActions in live Shopify's order; SPLIT only with more than one item left."""
        if self.status in ("OPEN", "IN_PROGRESS") and self.other_service:
            return ["REQUEST_FULFILLMENT", "HOLD", "MOVE"]
        if self.status in ("OPEN", "IN_PROGRESS"):
            split = ["SPLIT"] if sum(line.remaining for line in self.lines) > 1 else []
            return ["CREATE_FULFILLMENT", "REPORT_PROGRESS", "MOVE", "HOLD", *split]
        return ["RELEASE_HOLD", "HOLD", "MOVE"] if self.status == "ON_HOLD" else []

    def reopen_if_free(self) -> None:
        if not self.holds and self.status == "ON_HOLD":
            untouched = all(line.remaining == line.total for line in self.lines)
            self.status = "OPEN" if untouched else "IN_PROGRESS"


@dataclass
class FulfillmentLine:
    id: int
    line_item: LineItem
    quantity: int


@dataclass
class Fulfillment:
    id: int
    order_id: int
    lines: list[FulfillmentLine]
    tracking: list[dict]
    notify_customer: bool = False
    message: str | None = None
    status: str = "SUCCESS"
    created_at: str = field(default_factory=now_iso)


@dataclass
class ReturnLine:
    id: int
    fulfillment_line: FulfillmentLine
    quantity: int
    processed: int = 0
    removed: int = 0  # taken off the return by removeFromReturn

    def unprocessed(self) -> int:
        return self.quantity - self.processed - self.removed


@dataclass
class ExchangeLine:
    id: int
    variant: Variant
    quantity: int  # as Shopify's ExchangeLineItem.quantity: removed units included
    processed: int = 0
    line_items: list[LineItem] = field(default_factory=list)
    removed: int = 0  # taken off the return by removeFromReturn (unprocessed units only)
    unreleased: int = 0  # processed, but Shopify made no line item or FO (priced 0, see below)

    def unprocessed(self) -> int:
        return self.quantity - self.processed - self.removed


@dataclass
class Return:
    id: int
    name: str
    order_id: int
    lines: list[ReturnLine]
    exchanges: list[ExchangeLine]
    status: str = "OPEN"  # REQUESTED | OPEN | CLOSED | CANCELED | DECLINED
    decline: tuple[str, str | None] | None = None
    processed_by_api: bool = False  # returnProcess ran: too late to cancel
    balance_applied: Decimal = Decimal(0)
    removals: list[tuple[int, int]] = field(default_factory=list)  # last removeFromReturn's

    def returned_value(self) -> Decimal:
        return sum((r.fulfillment_line.line_item.price * r.quantity for r in self.lines),
                   Decimal(0))

    def balance(self, processed_only: bool = True) -> Decimal:
        value = sum((e.variant.price * (e.processed if processed_only else
                                        e.quantity - e.removed)
                     for e in self.exchanges), Decimal(0))
        return max(Decimal(0), value - self.returned_value())


@dataclass
class Order:
    id: int
    name: str
    email: str | None
    address: dict
    currency: str
    capture_mode: str
    line_items: list[LineItem] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    fulfillments: list[Fulfillment] = field(default_factory=list)
    fulfillment_order_ids: list[int] = field(default_factory=list)
    return_ids: list[int] = field(default_factory=list)
    mandate_ids: list[int] = field(default_factory=list)
    outstanding: Decimal = Decimal(0)
    invoices: list[dict] = field(default_factory=list)
    mandate_payments: dict[str, dict] = field(default_factory=dict)  # idempotencyKey -> payload
    created_at: str = field(default_factory=now_iso)
    tags: list[str] = field(default_factory=list)  # as Shopify keeps them (graphql_tags.py)

    def unsettled(self, auth: Transaction) -> Decimal:
        """What an AUTHORIZATION can still capture (zero once captured, expired or not one)."""
        if auth.kind != "AUTHORIZATION" or auth.status != "SUCCESS" or auth.closed:
            return Decimal(0)
        captured = sum((t.amount for t in self.transactions
                        if t.parent_id == auth.id and t.kind == "CAPTURE"), Decimal(0))
        return max(Decimal(0), auth.amount - captured)


@dataclass
class SandboxShop:
    domain: str
    name: str
    currency: str = "EUR"
    workflow: str = "processing"
    other_service_default: bool = False  # new fulfillment orders go to another service
    plus: bool = True  # Shopify Plus: orderCreateMandatePayment may take an `amount`
    awaiting_payment_lifts_on_payment: bool = True  # Shopify lifts AWAITING_PAYMENT once paid
    zero_price_exchange_unreleased: bool = False  # returnProcess makes no FO for 0-priced items
    # How Shopify answers for an order older than 60 days without read_all_orders: "null"
    # (`order` resolves to null) or "error" (a top-level "Not Found" error); neither is documented.
    old_order_answer: str = "null"
    # Level 2 protected customer data (name, address, phone, email): "approved", or how Shopify
    # answers an app without it (sandbox/shopify/customer_data.py: redacted | error | order_error).
    customer_data: str = "approved"
    variants: dict[int, Variant] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    returns: dict[int, Return] = field(default_factory=dict)
    fulfillment_orders: dict[int, FulfillmentOrder] = field(default_factory=dict)
    order_numbers: itertools.count = field(default_factory=lambda: itertools.count(1001))

    def variant_by_sku(self, sku: str) -> Variant:
        for variant in self.variants.values():
            if variant.sku == sku:
                return variant
        raise ValueError(f"{self.domain} has no variant with SKU {sku!r} (add_variant first)")

    def get(self, table: str, value: str | int, kind: str):
        """The object behind a GID in one of this shop's tables, None when unknown."""
        number = parse_gid(value, kind)
        return getattr(self, table).get(number) if number is not None else None


def add_line_item(order: Order, variant: Variant, quantity: int) -> LineItem:
    item = LineItem(next_id(), variant, quantity, variant.price)
    order.line_items.append(item)
    return item


def add_fulfillment_order(shop: SandboxShop, order: Order, items: list[LineItem],
                          hold: str | None = None) -> FulfillmentOrder:
    """A new fulfillment order for `items`, ON_HOLD with Shopify's own `hold` reason if given."""
    lines = [FulfillmentOrderLine(next_id(), i, i.quantity, i.quantity) for i in items]
    fo = FulfillmentOrder(next_id(), order.id, lines, other_service=shop.other_service_default)
    if hold:
        fo.holds.append(Hold(next_id(), hold, "", by_app=False))
        fo.status = "ON_HOLD"
    shop.fulfillment_orders[fo.id] = fo
    order.fulfillment_order_ids.append(fo.id)
    return fo


def create_return(shop: SandboxShop, order: Order, returned: list[tuple[str, int]],
                  exchange: list[tuple[str, int]], *, requested: bool = False) -> Return:
    """A return as returnCreate (OPEN, workflow applied) or returnRequest (REQUESTED) makes it."""
    lines = [ReturnLine(next_id(), _returnable(shop, order, sku, n), n) for sku, n in returned]
    if not lines:
        raise ValueError("a return needs at least one returned item")
    exchanges = [ExchangeLine(next_id(), shop.variant_by_sku(sku), qty) for sku, qty in exchange]
    ret = Return(next_id(), f"{order.name}-R{len(order.return_ids) + 1}", order.id, lines,
                 exchanges, status="REQUESTED")
    shop.returns[ret.id] = ret
    order.return_ids.append(ret.id)
    if not requested:
        open_return(shop, ret)
    return ret


def _returnable(shop: SandboxShop, order: Order, sku: str, quantity: int) -> FulfillmentLine:
    """The fulfillment line of `sku` with `quantity` not yet in a live return."""
    taken: dict[int, int] = {}
    for ret in (shop.returns[r] for r in order.return_ids):
        if ret.status not in ("CANCELED", "DECLINED"):
            for line in ret.lines:
                taken[line.fulfillment_line.id] = taken.get(line.fulfillment_line.id, 0) + \
                    line.quantity
    for fulfillment in order.fulfillments:
        for line in fulfillment.lines:
            if line.line_item.variant.sku == sku and \
                    line.quantity - taken.get(line.id, 0) >= quantity:
                return line
    raise ValueError(f"{order.name} has no {quantity} fulfilled, unreturned {sku!r}")


def open_return(shop: SandboxShop, ret: Return) -> None:
    """REQUESTED -> OPEN: authorize the balance, and in legacy shops process the exchange."""
    order = shop.orders[ret.order_id]
    ret.status = "OPEN"
    balance = ret.balance(processed_only=False)
    if balance > 0 and order.capture_mode == "authorization":
        order.transactions.append(Transaction(
            next_id(), "AUTHORIZATION", balance,
            expires_at=now_iso(timedelta(days=AUTHORIZATION_DAYS))))
    if shop.workflow == "legacy" and ret.exchanges:
        process_exchanges(shop, ret, {e.id: e.quantity for e in ret.exchanges},
                          hold="AWAITING_RETURN_ITEMS")


def process_exchanges(shop: SandboxShop, ret: Return, quantities: dict[int, int],
                      hold: str | None = None) -> FulfillmentOrder | None:
    """Turn exchange quantities into order line items on one new fulfillment order."""
    order = shop.orders[ret.order_id]
    items = []
    for line in ret.exchanges:
        if quantities.get(line.id) and _stays_unreleased(shop, line, hold):
            line.processed += quantities[line.id]
            line.unreleased += quantities[line.id]
        elif quantities.get(line.id):
            item = add_line_item(order, line.variant, quantities[line.id])
            line.line_items.append(item)
            line.processed += item.quantity
            items.append(item)
    apply_balance(order, ret)
    if not items:
        return None
    if hold is None and order.outstanding > 0:
        hold = "AWAITING_PAYMENT"
    return add_fulfillment_order(shop, order, items, hold)


def _stays_unreleased(shop: SandboxShop, line: ExchangeLine, hold: str | None) -> bool:
    """Merchants report that returnProcess (2025-07 workflow) makes no fulfillment order for
    exchange items priced 0; admin's "Process return" does (community.shopify.dev/t/33299)."""
    return shop.zero_price_exchange_unreleased and shop.workflow == "processing" and \
        hold is None and line.variant.price == 0


def release_unreleased(shop: SandboxShop, ret: Return) -> FulfillmentOrder:
    """The merchant's "Process return" in admin: unreleased exchange items get line items and
    their fulfillment order."""
    order = shop.orders[ret.order_id]
    items = []
    for line in (e for e in ret.exchanges if e.unreleased):
        item = add_line_item(order, line.variant, line.unreleased)
        line.line_items.append(item)
        line.unreleased = 0
        items.append(item)
    if not items:
        raise ValueError(f"return {ret.name} has no unreleased exchange items")
    return add_fulfillment_order(shop, order, items,
                                 "AWAITING_PAYMENT" if order.outstanding > 0 else None)


def apply_balance(order: Order, ret: Return) -> None:
    """Move totalOutstanding by the change in the return's balance since last applied."""
    balance = ret.balance() if ret.status in ("OPEN", "CLOSED") else Decimal(0)
    order.outstanding += balance - ret.balance_applied
    ret.balance_applied = balance


def settle(shop: SandboxShop, order: Order, amount: Decimal) -> None:
    """A payment arrived: lower totalOutstanding; paid up releases Shopify's AWAITING_PAYMENT."""
    order.outstanding -= amount
    if order.outstanding > 0 or not shop.awaiting_payment_lifts_on_payment:
        return
    for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids):
        fo.holds = [h for h in fo.holds if h.by_app or h.reason != "AWAITING_PAYMENT"]
        fo.reopen_if_free()


RETURN_MOVES = {"CLOSED": ("OPEN",), "OPEN": ("CLOSED",), "CANCELED": ("OPEN", "REQUESTED"),
                "DECLINED": ("REQUESTED",)}


def set_return_status(shop: SandboxShop, ret: Return, status: str) -> None:
    """returnClose / returnReopen / returnCancel / returnDeclineRequest, with Shopify's guards.

    Live Shopify (orders/returnClose-Reopen-Cancel-state-preconditions.json): closing a closed,
    reopening an open or cancelling a canceled return succeeds and changes nothing.
    """
    if ret.status == status and status != "DECLINED":
        return
    if ret.status not in RETURN_MOVES[status]:
        raise _invalid_move(ret, status)
    order = shop.orders[ret.order_id]
    exchange_fos = exchange_fulfillment_orders(shop, ret)
    if status == "CANCELED":
        if ret.processed_by_api or any(line.remaining < line.total
                                       for fo in exchange_fos for line in fo.lines):
            raise UserError("Return is not cancelable.", ["id"], "INVALID_STATE")
        for fo in exchange_fos:
            fo.status, fo.holds = "CANCELLED", []
    ret.status = status
    apply_balance(order, ret)


def _invalid_move(ret: Return, status: str) -> UserError:
    if status == "DECLINED":
        message = "The return is already declined." if ret.status == "DECLINED" else \
            "Return is not declinable. Only non-refunded returns with status REQUESTED can be " \
            "declined."
        return UserError(message, ["input", "id"], "INVALID_STATE")
    if status == "CANCELED":
        return UserError("Return is not cancelable.", ["id"], "INVALID_STATE")
    return UserError("Return status is invalid.", ["id"], "INVALID_STATE")


def exchange_fulfillment_orders(shop: SandboxShop, ret: Return) -> list[FulfillmentOrder]:
    """The fulfillment orders holding any of the return's processed exchange items."""
    ids = {item.id for line in ret.exchanges for item in line.line_items}
    order = shop.orders[ret.order_id]
    return [fo for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids)
            if any(line.line_item.id in ids for line in fo.lines)]
