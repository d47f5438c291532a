"""Sandbox Shopify: a local server speaking Shopify's real wire formats for the demo and tests.

Token exchange and refresh at /admin/oauth/access_token, Admin GraphQL at
/admin/api/<version>/graphql.json (documents validated against the real Admin schema when it is
available; the operations in sandbox/shopify/graphql_ops.py answer from the in-memory data of
sandbox/shopify/store.py), a stand-in for the admin that opens the app with a fresh id_token, and a
helper that sends correctly signed webhooks. The shop comes from the X-Swapline-Shop header, as the
app sends it with SHOPIFY_API_ORIGIN. Anything it was not built for is refused loudly.
Beyond Shopify's own: /sandbox/session-token (pages without the App Bridge CDN) and
/sandbox/sample-exchange (the demo's sample exchange, run by `Store.samples`).
Test hooks: the data hooks of sandbox/shopify/hooks.py on `Store` (create_order, create_return,
close_return, return_payload, set_old_order_answer for orders past the 60-day window,
set_customer_data for protected customer data (sandbox/shopify/customer_data.py), ...); faults
`throttle_next` (THROTTLED in a 200),
`http_fail_next` (an HTTP status with Retry-After) and `throttle_for` (a window of THROTTLED and
429 answers; these report the shop's real bucket, so the app sees no deficit to wait for);
`grant` (a shop granted fewer scopes than shopify.app.toml, refused ACCESS_DENIED by
sandbox/shopify/scopes.py); `count` (calls received) and `applied` (calls that changed
something) per operation name.
Every GraphQL answer is priced like Shopify (sandbox/shopify/cost.py): MAX_COST_EXCEEDED above
1,000 requested points, a per-shop leaky bucket (`set_bucket`; THROTTLED when it is short,
counted in `throttled_answers`), MAX_INPUT_SIZE_EXCEEDED for input arrays over 250 items, and
`extensions.cost` on every answer.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import jwt
import requests
from flask import Flask, jsonify, redirect, render_template, request
from graphql import OperationDefinitionNode, parse
from graphql.error import GraphQLSyntaxError

from sandbox.http_server import IDLE_TIMEOUT, SandboxServer
from sandbox.shopify import cost, customer_data
from sandbox.shopify import scopes as shopify_scopes
from sandbox.shopify.graphql_ops import OPERATIONS, GraphQLFault, execute, schema_errors
from sandbox.shopify.hooks import ShopData
from sandbox.shopify.store import Refused, SandboxShop

ACCESS_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 90 * 24 * 3600
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
log = logging.getLogger(__name__)


def mint_session_token(shop: str, api_key: str, secret: str, **overrides) -> str:
    """A session (ID) token exactly as App Bridge gets it from Shopify: HS256, 60 s, same claims."""
    now = int(time.time())
    claims = {"iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": api_key,
              "sub": "42", "exp": now + 60, "nbf": now, "iat": now,
              "jti": str(uuid.uuid4()), "sid": secrets.token_hex(16)}
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")


def sign_webhook(body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body with the app's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_headers(topic: str, shop: str, body: bytes, secret: str, *,
                    webhook_id: str | None = None, api_version: str = "2026-10") -> dict:
    """The headers Shopify sends with an HTTPS webhook delivery."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_webhook(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }


class CallLog(list):
    """The list of (shop, what) calls; clearing it runs the given resets too."""

    def __init__(self, *resets):
        super().__init__()
        self._resets = resets

    def clear(self) -> None:
        super().clear()
        for reset in self._resets:
            reset()


@dataclass
class Grant:
    shop: str
    expires_at: float


class Store(ShopData):
    """Everything the sandbox knows, in memory, behind one lock."""

    def __init__(self, api_key: str, api_secret: str, state_path: Path | None = None):
        self.api_key, self.api_secret = api_key, api_secret
        self.lock = threading.RLock()
        self.shops: dict[str, SandboxShop] = {}
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (shop, operation, variables)
        self.changes: Counter[tuple[str, str]] = Counter()  # (shop, operation) that changed data
        self.throttle_next = 0  # answer this many GraphQL calls THROTTLED first
        self.throttled_until = 0.0  # time.monotonic() until which every call is throttled
        self._throttled_calls = 0
        self.http_failures: deque[tuple[int, float | None]] = deque()
        self.app_scopes = shopify_scopes.app_scopes()  # managed install grants the toml's
        self.granted: dict[str, frozenset[str]] = {}  # test hook: a shop granted fewer
        self.buckets: dict[str, cost.Bucket] = {}  # per shop; see set_bucket
        self.throttled_answers: Counter[str] = Counter()  # THROTTLED answers per shop
        # (shop, what) for tests to count; tests reset with calls.clear(), which also forgets
        # the variables, the change counts and pending HTTP faults.
        self.calls = CallLog(self.requests.clear, self.changes.clear, self.http_failures.clear,
                             self.throttled_answers.clear)
        self.samples: dict[str, Callable[[str], dict]] = {}  # shop -> scenario's run(kind)
        self.state_path = state_path  # the demo keeps its grants across runs
        if state_path and state_path.exists():
            self._load(json.loads(state_path.read_text()))

    def _load(self, state: dict) -> None:
        for domain, name in state.get("shops", {}).items():
            self.add_shop(domain, name)
        for kind in ("access_tokens", "refresh_tokens"):
            getattr(self, kind).update({t: Grant(**g) for t, g in state.get(kind, {}).items()})

    def _save(self) -> None:
        if self.state_path is None:
            return
        state = {"shops": {d: s.name for d, s in self.shops.items()},
                 "access_tokens": {t: vars(g) for t, g in self.access_tokens.items()},
                 "refresh_tokens": {t: vars(g) for t, g in self.refresh_tokens.items()}}
        self.state_path.write_text(json.dumps(state))

    def add_shop(self, domain: str, name: str = "") -> SandboxShop:
        with self.lock:
            return self.shops.setdefault(domain, SandboxShop(domain, name or domain.split(".")[0]))

    def count(self, what: str, shop: str | None = None) -> int:
        """Calls received (token exchanges, refreshes, GraphQL operations by name)."""
        with self.lock:
            return sum(1 for s, w in self.calls if w == what and (shop is None or s == shop))

    def applied(self, operation: str, shop: str | None = None) -> int:
        """Calls of `operation` that changed data (no userErrors, not an idempotent replay)."""
        with self.lock:
            return sum(n for (s, op), n in self.changes.items()
                       if op == operation and (shop is None or s == shop))

    def variables(self, operation: str, shop: str | None = None) -> list[dict]:
        """The variables of every call of `operation`, oldest first."""
        with self.lock:
            return [v for s, op, v in self.requests if op == operation and shop in (None, s)]

    def http_fail_next(self, n: int, status: int = 429, retry_after: float | None = 1) -> None:
        """Answer the next n GraphQL calls with HTTP `status` (and Retry-After when given)."""
        with self.lock:
            self.http_failures.extend([(status, retry_after)] * n)

    def throttle_for(self, seconds: float) -> None:
        """For `seconds` from now the app is over its rate limit: GraphQL calls are answered
        THROTTLED (in a 200, with the shop's real throttleStatus, so the app has no deficit to
        wait for and hands the retry to RQ) and every other one HTTP 429, Retry-After 1."""
        with self.lock:
            self.throttled_until = time.monotonic() + seconds

    def throttled(self) -> str | None:
        """"THROTTLED", "429" or None for the call being answered now."""
        with self.lock:
            if time.monotonic() >= self.throttled_until:
                return None
            self._throttled_calls += 1
            return "429" if self._throttled_calls % 2 == 0 else "THROTTLED"

    def bucket(self, shop: str) -> cost.Bucket:
        """The shop's query-cost bucket (Standard plan unless set_bucket said otherwise)."""
        with self.lock:
            return self.buckets.setdefault(shop, cost.Bucket())

    def set_bucket(self, shop: str, *, maximum: float = cost.STANDARD_BUCKET,
                   restore: float = cost.STANDARD_RESTORE) -> None:
        """Give the shop a full bucket of `maximum` points refilling at `restore` points/s."""
        with self.lock:
            self.buckets[shop] = cost.Bucket(maximum, restore)

    def reset_faults(self) -> None:
        """Drop pending THROTTLED and HTTP faults."""
        with self.lock:
            self.throttle_next = 0
            self.throttled_until = 0.0
            self.http_failures.clear()

    def grant(self, shop: str, scopes) -> None:
        """Test hook: the shop granted only `scopes` (e.g. installed before the toml grew)."""
        with self.lock:
            self.granted[shop] = frozenset(scopes)

    def scopes(self, shop: str) -> frozenset[str]:
        with self.lock:
            return self.granted.get(shop, self.app_scopes)

    def issue_pair(self, shop: str) -> dict:
        now = time.time()
        access, refresh = f"shpat_{secrets.token_hex(16)}", f"shprt_{secrets.token_hex(16)}"
        with self.lock:
            self.access_tokens[access] = Grant(shop, now + ACCESS_TOKEN_TTL)
            self.refresh_tokens[refresh] = Grant(shop, now + REFRESH_TOKEN_TTL)
            self._save()
        scope = ",".join(sorted(self.scopes(shop)))
        return {"access_token": access, "scope": scope, "expires_in": ACCESS_TOKEN_TTL,
                "refresh_token": refresh, "refresh_token_expires_in": REFRESH_TOKEN_TTL}

    def expire_access_tokens(self, shop: str) -> None:
        """Test hook: make every access token of a shop expired now."""
        with self.lock:
            for grant in self.access_tokens.values():
                if grant.shop == shop:
                    grant.expires_at = time.time() - 1

    def shop_for_token(self, token: str) -> str | None:
        with self.lock:
            grant = self.access_tokens.get(token)
            return grant.shop if grant and grant.expires_at > time.time() else None


TEMPLATES = Path(__file__).resolve().parent / "templates"


def create_sandbox_app(store: Store, app_url: str = "http://127.0.0.1:8000",
                       mail=None) -> Flask:
    """The sandbox's Flask app (served by SandboxShopify, or used with a test client); `mail`:
    the sandbox mail catcher (sandbox/mail.py) whose mails /admin/mail lists."""
    app = Flask("sandbox_shopify", template_folder=str(TEMPLATES))
    app.json.sort_keys = False  # answer in selection order, as Shopify does

    def oauth_error(error: str, description: str, status: int = 400):
        return jsonify(error=error, error_description=description), status

    @app.post("/admin/oauth/access_token")
    def access_token():
        shop = request.headers.get("X-Swapline-Shop", "")
        body = request.get_json(silent=True)
        if not shop or not isinstance(body, dict):
            return oauth_error("invalid_request", "JSON body and X-Swapline-Shop are required")
        if body.get("client_id") != store.api_key or body.get("client_secret") != store.api_secret:
            return oauth_error("invalid_client", "Client credentials are invalid", 401)
        if body.get("grant_type") == TOKEN_EXCHANGE:
            return _token_exchange(shop, body)
        if body.get("grant_type") == "refresh_token":
            return _refresh(shop, body)
        return oauth_error("unsupported_grant_type", f"grant_type {body.get('grant_type')!r}")

    def _token_exchange(shop: str, body: dict):
        if body.get("subject_token_type") != ID_TOKEN_TYPE or \
                body.get("requested_token_type") != OFFLINE_TOKEN_TYPE:
            return oauth_error("invalid_request", "sandbox supports offline tokens from id tokens")
        if str(body.get("expiring")) != "1":
            return oauth_error("invalid_request", "non-expiring offline tokens are not allowed")
        try:
            claims = jwt.decode(body.get("subject_token", ""), store.api_secret,
                                algorithms=["HS256"], audience=store.api_key, leeway=10)
        except jwt.PyJWTError as exc:
            return oauth_error("invalid_subject_token", str(exc))
        if claims.get("dest") != f"https://{shop}":
            return oauth_error("invalid_subject_token", "token is for another shop")
        store.add_shop(shop)
        with store.lock:
            store.calls.append((shop, "token_exchange"))
        return jsonify(store.issue_pair(shop))

    def _refresh(shop: str, body: dict):
        with store.lock:
            grant = store.refresh_tokens.get(body.get("refresh_token", ""))
            if grant is None or grant.shop != shop or grant.expires_at <= time.time():
                return oauth_error("invalid_grant", "refresh token is invalid or expired")
            store.calls.append((shop, "refresh"))
        return jsonify(store.issue_pair(shop))

    @app.post("/admin/api/<version>/graphql.json")
    def graphql(version: str):
        shop = request.headers.get("X-Swapline-Shop", "")
        if store.shop_for_token(request.headers.get("X-Shopify-Access-Token", "")) != shop:
            return jsonify(errors="[API] Invalid API key or access token (unrecognized login "
                                  "or wrong password)"), 401
        failure = _http_failure()
        if failure is not None:
            return failure
        throttled = store.throttled()
        if throttled == "429":
            return _too_many(1)
        body = request.get_json(silent=True) or {}
        name, document, error = _operation(body.get("query", ""))
        if error:
            log.error("sandbox shopify refused a document: %s", error)
            return jsonify(errors=[{"message": error}]), 400
        problems = schema_errors(document)
        if problems:  # Shopify answers an invalid document 200 with one error per problem
            log.error("sandbox shopify: %s is invalid against the Admin schema: %s", name,
                      "; ".join(problems))
            return jsonify(errors=[{"message": m} for m in problems])
        variables = body.get("variables") or {}
        return _priced(shop, name, document, variables, forced=throttled == "THROTTLED")

    def _priced(shop: str, name: str, document, variables: dict, forced: bool):
        """Shopify's order: cost limit, then the bucket, then input sizes, then the operation."""
        bucket, requested = store.bucket(shop), cost.requested_cost(document, variables)
        if requested > cost.MAX_QUERY_COST:
            return jsonify(errors=[cost.max_cost_error(requested)],
                           extensions=cost.cost_extension(requested, None, bucket))
        with store.lock:
            if not forced and store.throttle_next > 0:
                store.throttle_next, forced = store.throttle_next - 1, True
        if forced or not bucket.take(requested):
            with store.lock:
                store.throttled_answers[shop] += 1
            return jsonify(errors=[cost.throttled_error()],
                           extensions=cost.cost_extension(requested, None, bucket))
        oversized = cost.oversized_inputs(document, variables)
        if oversized:  # live answers show the requested cost charged and no actual cost
            return jsonify(errors=oversized,
                           extensions=cost.cost_extension(requested, None, bucket))
        data, answer = _execute(shop, name, document, variables)
        if data is None:  # refused loudly (400) or Shopify's top-level errors, nothing spent
            bucket.refund(requested)
            return answer if isinstance(answer, tuple) else \
                jsonify(**answer, extensions=cost.cost_extension(requested, None, bucket))
        actual = cost.actual_cost(document, variables, data, requested)
        bucket.refund(requested - actual)
        withheld = customer_data.withhold(store.add_shop(shop).customer_data, document, data)
        return jsonify(**({"errors": withheld} if withheld else {}), data=data,
                       extensions=cost.cost_extension(requested, actual, bucket))

    def _execute(shop: str, name: str, document, variables: dict):
        with store.lock:
            store.calls.append((shop, name))
            store.requests.append((shop, name, variables))
            try:
                refused = shopify_scopes.refusal(store.scopes(shop), document)
                if refused:
                    return None, refused
                data, changed = execute(store, store.add_shop(shop), document, name, variables)
            except GraphQLFault as exc:
                return None, exc.body()
            except Refused as exc:
                log.error("sandbox shopify refused %s: %s", name, exc)
                return None, (jsonify(errors=[{"message": f"sandbox: {exc}"}]), 400)
            store.changes[(shop, name)] += changed
        return data, None

    def _http_failure():
        with store.lock:
            if not store.http_failures:
                return None
            status, retry_after = store.http_failures.popleft()
        if status == 429:
            return _too_many(retry_after)
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return jsonify(errors=f"sandbox: injected {status}"), status, headers

    def _too_many(retry_after: float | None):
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return jsonify(errors="Exceeded 2 calls per second for api client. Reduce request rates "
                              "to resume uninterrupted service."), 429, headers

    def _operation(query: str):
        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            return "", None, f"syntax error: {exc.message}"
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        name = ops[0].name.value if len(ops) == 1 and ops[0].name else ""
        if name not in OPERATIONS:
            return name, None, f"sandbox does not know operation {name or '(anonymous)'!r}"
        return name, document, None

    @app.get("/admin/apps/swapline")
    @app.get("/admin/apps/swapline/exchanges/<int:exchange_id>")
    def open_app(exchange_id: int | None = None):
        """Stand-in for Shopify admin opening the embedded app (at an exchange's page, as an
        alert mail's link does): a fresh id_token in the URL."""
        shop = request.args.get("shop", "")
        if shop not in store.shops:
            return jsonify(error=f"unknown sandbox shop {shop!r}"), 404
        host = base64.b64encode(f"admin.shopify.com/store/{shop.split('.')[0]}".encode()).decode()
        token = mint_session_token(shop, store.api_key, store.api_secret)
        query = urlencode({"embedded": "1", "shop": shop, "host": host, "id_token": token})
        path = f"/exchanges/{exchange_id}" if exchange_id is not None else "/"
        return redirect(f"{app_url}{path}?{query}")

    @app.get("/admin/mail")
    def mail_page():
        """The sandbox admin's page of the mails the mail catcher received, newest first."""
        mails = list(reversed(mail.mails())) if mail is not None else []
        return render_template("mail.html", mails=mails,
                               smtp_url=mail.url if mail is not None else None)

    @app.post("/sandbox/sample-exchange")
    def sample_exchange():
        """Sandbox only: the demo's sample order and return with an exchange (sandbox/scenario.py),
        asked for by the app like an Admin API call, JSON {"kind": "exchange" | "out_of_stock"};
        answers {order, return_id}."""
        shop = request.headers.get("X-Swapline-Shop", "")
        if store.shop_for_token(request.headers.get("X-Shopify-Access-Token", "")) != shop:
            return jsonify(errors="[API] Invalid API key or access token"), 401
        run = store.samples.get(shop)
        if run is None:
            return jsonify(error=f"no sample scenario runs for {shop!r}"), 404
        kind = (request.get_json(silent=True) or {}).get("kind") or "exchange"
        try:
            return jsonify(run(kind)), 201
        except ValueError as exc:  # a kind of sample the scenario does not play
            return jsonify(error=str(exc)), 400

    @app.get("/sandbox/session-token")
    def session_token():
        """What shopify.idToken() returns, for pages running without the App Bridge CDN."""
        shop = request.args.get("shop", "")
        if shop not in store.shops:
            return jsonify(error=f"unknown sandbox shop {shop!r}"), 404
        response = jsonify(token=mint_session_token(shop, store.api_key, store.api_secret))
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    return app


class SandboxShopify:
    """Runs the sandbox on a port (sandbox/http_server.py, connections kept alive, closed after
    `idle_timeout` seconds idle); `send_webhook` signs like Shopify."""

    def __init__(self, api_key: str, api_secret: str, *, host: str = "127.0.0.1", port: int = 0,
                 app_url: str = "http://127.0.0.1:8000", state_path: Path | None = None,
                 mail=None, idle_timeout: float = IDLE_TIMEOUT):
        self.store = Store(api_key, api_secret, state_path)
        self.app_url = app_url
        self.server = SandboxServer(create_sandbox_app(self.store, app_url, mail), host=host,
                                    port=port, idle_timeout=idle_timeout)
        self.origin = self.server.origin

    def start(self) -> SandboxShopify:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def send_webhook(self, topic: str, shop: str, payload: dict, *,
                     webhook_id: str | None = None) -> requests.Response:
        """POST a correctly signed webhook to the app, as Shopify's delivery would."""
        body = json.dumps(payload).encode()
        headers = webhook_headers(topic, shop, body, self.store.api_secret, webhook_id=webhook_id)
        return requests.post(f"{self.app_url}/webhooks/shopify", data=body, headers=headers,
                             timeout=5)

    def send_return_webhook(self, topic: str, shop: str, return_id: str, *,
                            webhook_id: str | None = None) -> requests.Response:
        """POST the returns/* webhook Shopify would send about a sandbox return."""
        return self.send_webhook(topic, shop, self.store.return_payload(shop, return_id, topic),
                                 webhook_id=webhook_id)

    def remove_from_return(self, shop: str, return_id: str, **lines) -> requests.Response:
        """The merchant's removeFromReturn (store hook), then the returns/update Shopify sends."""
        self.store.remove_from_return(shop, return_id, **lines)
        return self.send_return_webhook("returns/update", shop, return_id)
