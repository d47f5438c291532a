"""The Shopify client's error family: one base, what a person must fix (auth, refused documents,
withheld data, a mutation's userErrors) and what is safe to retry (throttled, 5xx, network);
and how an answer from Shopify becomes one of them."""
from __future__ import annotations

from clients.shopify_cost import cost_of, error_codes


class ShopifyError(RuntimeError):
    """Base of every Shopify failure; `retriable` tells the job whether RQ should try again."""

    retriable = False

    def __init__(self, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


class ShopifyAuthError(ShopifyError):
    """The shop's token is missing, expired beyond refresh, or rejected (reinstall/reopen)."""


class ShopifyGraphQLError(ShopifyError):
    """Shopify refused the document or its variables (a bug or a user error, not transient);
    `paths` are the answer's error paths (e.g. ["order"]: that field could not be given)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "",
                 paths: tuple = ()):
        super().__init__(message, status=status, code=code)
        self.paths = paths


class ShopifyProtectedData(ShopifyGraphQLError):
    """Shopify withheld protected customer data (the app lacks its approval, a Partner Dashboard
    matter, not a scope): `data` is the rest of the answer, with the withheld fields null."""

    def __init__(self, message: str, *, status: int | None = None, paths: tuple = (),
                 data: dict | None = None):
        super().__init__(message, status=status, code="PROTECTED_CUSTOMER_DATA", paths=paths)
        self.data = data or {}


class ShopifyAccessDenied(ShopifyGraphQLError):
    """The shop has not granted a scope the document needs: only the merchant can fix it."""


class ShopifyRetriableError(ShopifyError):
    """Throttled, 5xx or network trouble: safe to retry later."""

    retriable = True


class ShopifyThrottled(ShopifyRetriableError):
    """THROTTLED: the shop's cost bucket is short; `wait` seconds refill it (0 when unknown)."""

    def __init__(self, message: str, *, wait: float, status: int | None = None):
        super().__init__(message, status=status, code="THROTTLED")
        self.wait = wait


class ShopifyRefusal(ShopifyError):
    """Shopify answered and will not do it until a person acts: the message is written for
    the merchant (the lifecycle shows it as the reason an exchange needs attention)."""


class ShopifyUserError(ShopifyRefusal):
    """A mutation's `userErrors`: Shopify validated the input and said no; `field` is the
    mutation ("fulfillmentCreate"), `messages` Shopify's own words."""

    def __init__(self, field: str, messages: list[str]):
        super().__init__(f"Shopify {field}: " + "; ".join(messages), code="USER_ERRORS")
        self.field, self.messages = field, messages


class ShopifyOrderUnavailable(ShopifyRefusal):
    """Shopify gives no order where one should be: past the 60-day window without
    read_all_orders, deleted, or withheld as protected customer data."""


def token_or_raise(result, what: str):
    """The access token of a token exchange or refresh, or the error its answer means."""
    if result.ok and result.access_token is not None:
        return result.access_token
    status = result.response.status if result.response else None
    retriable = status in (0, 429) or (status or 0) >= 500
    error = ShopifyRetriableError if retriable else ShopifyAuthError
    raise error(f"{what} failed: {result.log.code}", status=status, code=result.log.code)


def graphql_error(result, document: str, answer: dict) -> ShopifyError:
    status = result.response.status if result.response else None
    code = result.log.code
    if code == "graphql_errors":
        return _answer_error(document, answer, status)
    if status == 401:
        return ShopifyAuthError(f"{document}: access token rejected", status=status, code=code)
    if status in (0, 429) or (status or 0) >= 500:
        return ShopifyRetriableError(f"{document}: {code}", status=status, code=code)
    return ShopifyGraphQLError(f"{document}: {code}", status=status, code=code)


def _answer_error(document: str, answer: dict, status: int | None) -> ShopifyError:
    """A 200 with top-level `errors`: throttled (retriable), too expensive or refused (terminal)."""
    codes = error_codes(answer)
    if "THROTTLED" in codes:
        cost = cost_of(answer.get("extensions"))
        wait = cost.wait_for(cost.requested) if cost else 0.0
        return ShopifyThrottled(f"{document}: throttled (bucket short, {wait:.1f} s to refill)",
                                wait=wait, status=status)
    errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
    paths = tuple(tuple(e.get("path") or ()) for e in errors)
    if errors and all(_protected_data(e) for e in errors):  # before ACCESS_DENIED: it may share
        return ShopifyProtectedData(  # that code, but only the developer can fix it
            f"{document}: {_first_error(answer)}", status=status, paths=paths,
            data=answer.get("data"))
    if "ACCESS_DENIED" in codes:
        return ShopifyAccessDenied(
            f"{document}: {_first_error(answer)} The shop has not granted Swapline this "
            "permission; the merchant approves it by opening Swapline in Shopify admin.",
            status=status, code="ACCESS_DENIED")
    if "MAX_COST_EXCEEDED" in codes:
        limit = answer["errors"][codes.index("MAX_COST_EXCEEDED")].get("extensions", {})
        return ShopifyGraphQLError(
            f"{document}: Shopify refuses this query as too expensive (cost "
            f"{limit.get('cost')}, limit {limit.get('maxCost', 1000)} points per query); "
            "the document must read fewer items per page", status=status,
            code="MAX_COST_EXCEEDED")
    message = _first_error(answer)
    return ShopifyGraphQLError(f"{document}: {message}", status=status,
                               code=next((c for c in codes if c), "graphql_errors"), paths=paths)


def _protected_data(error: dict) -> bool:
    """A protected-customer-data refusal: by its documentation link when present, else by
    Shopify's wording ("This app is not approved to access the X object" / "to use the x
    field"; shopify.dev/docs/apps/launch/protected-customer-data)."""
    link = str((error.get("extensions") or {}).get("documentation") or "")
    return "protected-customer-data" in link or \
        "is not approved to " in str(error.get("message") or "")


def _first_error(answer: dict) -> str:
    try:
        return str(answer["errors"][0]["message"])[:300]
    except (KeyError, IndexError, TypeError):
        return "GraphQL errors"

