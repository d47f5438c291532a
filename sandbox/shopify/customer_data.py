"""Protected customer data: what Shopify answers an app not approved for Level 2 fields.

shopify.dev/docs/apps/launch/protected-customer-data: name, address, phone and email need their
own approval; without it "unapproved fields will be redacted", and its GraphQL example answers
HTTP 200 with the field null beside an `errors` entry pathed at that field ("This app is not
approved to access the Customer object. See https://partners.shopify.com/…/customer_data for
more details."). Developers report more shapes: fields null with no error at all (ShopifySharp
#894, "empty lists and null data instead of errors"), a REST shipping address cut to its province
and country (ShopifySharp #1110), and the whole object refused with ACCESS_DENIED ("This app is
not approved to access the Order object", data null). Which one a Level 2 refusal gives is not
documented, so each shop has a switch (`SandboxShop.customer_data`):

- "approved": every field answered;
- "redacted": the protected fields null, no error (province and country stay, as in #1110);
- "error": the same nulls plus one error per field, as the shopify.dev example;
- "order_error": the Order holding a protected field is refused; GraphQL's null propagation then
  takes its nearest nullable parent with it (`Return.order` is non-null: the whole return goes).
"""
from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_non_null_type,
    visit,
)

from sandbox.shopify.graphql_ops import admin_schema

MODES = ("approved", "redacted", "error", "order_error")
DOCS = "https://shopify.dev/docs/apps/launch/protected-customer-data"
PARTNERS = "https://partners.shopify.com/1/apps/1/customer_data"  # placeholder ids
# Level 2 fields (name, address, phone, email) on the types Swapline's documents can reach.
PROTECTED = {("Order", "email"), ("Order", "phone"), ("Customer", "email"),
             ("Customer", "phone"), ("Customer", "firstName"), ("Customer", "lastName"),
             *(("MailingAddress", f) for f in ("name", "firstName", "lastName", "company",
                                               "address1", "address2", "city", "zip", "phone",
                                               "latitude", "longitude"))}


def withhold(mode: str, document: DocumentNode, data: dict) -> list[dict]:
    """Null what `mode` withholds in `data` (in place); the errors Shopify sends beside it."""
    if mode == "approved" or admin_schema() is None:
        return []
    found = _protected(document)
    if mode == "order_error":
        return _refuse_objects(found, data)
    errors = []
    for path, _ in found:
        errors += [_error(p, _message(path[-1], p)) for p in _concrete(data, path)]
        _null(data, path)
    return errors if mode == "error" else []


def _refuse_objects(found: list, data: dict) -> list[dict]:
    errors, refused = [], set()
    for _, (order_path, nulled_path) in found:
        if order_path is None or order_path in refused:
            continue
        refused.add(order_path)
        targets = _concrete(data, order_path)
        _null(data, nulled_path)
        errors += [_error(p, "This app is not approved to access the Order object. "
                             f"See {PARTNERS} for more details.") for p in targets]
    return errors


def _message(field: str, path: list) -> str:
    if field in ("email", "phone") and "shippingAddress" not in path:
        return f"This app is not approved to use the {field} field. See {PARTNERS} for more " \
               "details."
    return f"This app is not approved to access the MailingAddress object. See {PARTNERS} " \
           "for more details."


def _error(path: list, message: str) -> dict:
    # extensions as a recorded refusal of the Order object carried them (ACCESS_DENIED and the
    # documentation link); the shopify.dev example shows message, locations and path only.
    return {"message": message, "path": path,
            "extensions": {"code": "ACCESS_DENIED", "documentation": DOCS}}


def _protected(document: DocumentNode) -> list[tuple[tuple, tuple]]:
    """(path of each protected field, (path of its Order, path null propagation clears))."""
    info, found = TypeInfo(admin_schema()), []
    for op in (d for d in document.definitions if isinstance(d, OperationDefinitionNode)):
        visit(op, TypeInfoVisitor(info, _Finder(info, found)))
    return found


class _Finder(Visitor):
    def __init__(self, info: TypeInfo, found: list):
        super().__init__()
        self.info, self.found, self.stack = info, found, []  # (key, type name, non-null)

    def enter_field(self, node: FieldNode, *_):
        parent, kind = self.info.get_parent_type(), self.info.get_type()
        key = node.alias.value if node.alias else node.name.value
        self.stack.append((key, get_named_type(kind).name, is_non_null_type(kind)))
        if (parent.name, node.name.value) in PROTECTED:
            self.found.append((tuple(k for k, _, _ in self.stack), self._order_paths()))

    def leave_field(self, *_):
        self.stack.pop()

    def _order_paths(self) -> tuple[tuple | None, tuple | None]:
        keys = [k for k, _, _ in self.stack]
        at = max((i for i, (_, name, _) in enumerate(self.stack) if name == "Order"),
                 default=None)
        if at is None:
            return None, None
        top = at
        while top > 0 and self.stack[top][2]:  # a non-null field's null goes to its parent
            top -= 1
        return tuple(keys[:at + 1]), tuple(keys[:top + 1])


def _concrete(data, path: tuple, prefix: tuple = ()) -> list[list]:
    """The answer paths `path` reaches (list items numbered), where its parent is not null."""
    if not path:
        return [list(prefix)]
    if isinstance(data, list):
        return [p for i, item in enumerate(data) for p in _concrete(item, path, prefix + (i,))]
    if not isinstance(data, dict) or path[0] not in data:
        return []
    if len(path) == 1:
        return [list(prefix + path)]
    return _concrete(data[path[0]], path[1:], prefix + path[:1])


def _null(data: dict, path: tuple) -> None:
    """Set every value `path` reaches to None."""
    for concrete in _concrete(data, path):
        parent = data
        for step in concrete[:-1]:
            parent = parent[step]
        parent[concrete[-1]] = None
