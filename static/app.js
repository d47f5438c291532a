// Session tokens for every htmx request: App Bridge's shopify.idToken() inside Shopify admin,
// the sandbox's token endpoint when the CDN is unreachable (demo, tests). Either way the server
// verifies the same HS256 token with the same code.
(function () {
  "use strict";
  const meta = (name) => {
    const el = document.querySelector(`meta[name="${name}"]`);
    return el ? el.content : "";
  };
  const sandboxOrigin = meta("swapline-sandbox-origin");
  const shop = meta("swapline-shop");

  async function idToken() {
    if (window.shopify && typeof window.shopify.idToken === "function") {
      return window.shopify.idToken();
    }
    if (sandboxOrigin && shop) {
      const url = `${sandboxOrigin}/sandbox/session-token?shop=${encodeURIComponent(shop)}`;
      const response = await fetch(url);
      if (!response.ok) throw new Error(`sandbox token: HTTP ${response.status}`);
      return (await response.json()).token;
    }
    throw new Error("no App Bridge and no sandbox: cannot get a session token");
  }
  window.swaplineIdToken = idToken;

  // Bounce page: App Bridge reloads by itself; without it, fetch a token and reload here.
  if (document.body && document.body.dataset.bounce) {
    const target = meta("swapline-reload");
    if (!window.shopify && target.startsWith("/") && !target.startsWith("//")) {
      idToken().then((token) => {
        const url = new URL(target, window.location.origin);
        url.searchParams.set("id_token", token);
        window.location.replace(url.toString());
      });
    }
    return;
  }

  // "Generate" beside a secret: 32 random bytes as base64url, shown as text so the merchant can
  // copy it before saving (it is never shown again). Delegated: htmx swaps the form.
  document.addEventListener("click", (evt) => {
    const button = evt.target.closest("button[data-generate]");
    const input = button && document.getElementById(button.dataset.generate);
    if (!input) return;
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    input.value = btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    input.type = "text";
    input.select();
  });

  // Boosted links push bare paths (/settings); keep Shopify's embedded, shop and host in the
  // address so that a reload still names the shop and goes through the bounce page.
  document.addEventListener("htmx:beforeHistoryUpdate", (evt) => {
    const history = evt.detail.history;
    const url = new URL(history.path, window.location.origin);
    const current = new URLSearchParams(window.location.search);
    for (const name of ["embedded", "shop", "host"]) {
      if (current.has(name) && !url.searchParams.has(name)) {
        url.searchParams.set(name, current.get(name));
      }
    }
    history.path = url.pathname + url.search + url.hash;
  });

  // Before every htmx request: get a fresh token, then let htmx issue the request.
  document.addEventListener("htmx:confirm", (evt) => {
    const elt = evt.detail.elt;
    evt.preventDefault();
    if (evt.detail.question && !window.confirm(evt.detail.question)) return;
    idToken().then((token) => {
      elt.swaplineToken = token;
      evt.detail.issueRequest(true);
    }).catch((error) => console.error("Swapline:", error));
  });

  document.addEventListener("htmx:configRequest", (evt) => {
    const elt = evt.detail.elt;
    if (elt.swaplineToken) {
      evt.detail.headers["Authorization"] = `Bearer ${elt.swaplineToken}`;
      delete elt.swaplineToken;
    }
  });

  // A 401 asking for a retry gets exactly one more try with a new token.
  document.addEventListener("htmx:afterRequest", (evt) => {
    const xhr = evt.detail.xhr;
    const elt = evt.detail.elt;
    const retry = xhr && xhr.status === 401 &&
      xhr.getResponseHeader("X-Shopify-Retry-Invalid-Session-Request") === "1";
    if (!retry || elt.swaplineRetried) {
      elt.swaplineRetried = false;
      return;
    }
    elt.swaplineRetried = true;
    const config = evt.detail.requestConfig;
    window.htmx.ajax(config.verb, config.path, { source: elt, target: evt.detail.target });
  });
})();
