# The two commands a newcomer runs on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HTMX := static/vendor/htmx.min.js

.PHONY: setup demo test lint bench clean browser-deps

setup: $(STAMP) $(HTMX)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# htmx comes from the npm package, copied into static/vendor/ (never committed).
$(HTMX): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	npm run --silent vendor

# `make demo DEMO_ARGS=--returned-status`: the warehouse also has a 3PL-added Returned status.
demo: setup
	SWAPLINE_SANDBOX=1 $(PY) -m flask --app app demo $(DEMO_ARGS)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# The browser tests drive Debian's Chromium (never a downloaded browser); they skip without it.
# Needs root, so CI runs it (.ci/run); `make test` alone never installs system packages.
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium; }

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m bench.webhook_ingest

clean:
	rm -rf $(VENV) node_modules static/vendor instance .pytest_cache
