# Flireo: two commands a new user needs — `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# The suite mostly waits on real time (calls, sipp, browsers): three workers, one test file each at a time.
PYTEST_ARGS ?= -n 3 --dist loadfile

.PHONY: run test install system-deps lint typecheck pytest lock clean local-cluster

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Exact versions with hashes come from requirements.lock (regenerate with `make lock`).
$(STAMP): $(PY) requirements.lock requirements-nodeps.lock pyproject.toml
	$(PIP) install --quiet --require-hashes -r requirements.lock
	$(PIP) install --quiet --no-deps --require-hashes -r requirements-nodeps.lock
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Start the server on embedded defaults (SQLite WAL in ./data, in-process bus, local speech).
run: install
	$(VENV)/bin/flireo serve

## Several workers on this machine: Kamailio on 127.0.0.1:5060 in front of WORKERS
## `flireo serve` on 127.0.0.2... sharing PostgreSQL and Redis on 127.0.0.1 (the
## database must exist; see docs/scale-out.md and deploy/local-cluster --help).
WORKERS ?= 2
local-cluster: install
	$(PY) deploy/local-cluster --workers $(WORKERS)

## Tools the tests drive for real: sipp (Debian sip-tester), baresip (a softphone
## with SRTP and TLS: baresip-core, without the GTK/X11/GStreamer front-ends),
## kamailio (the dispatcher in front of several workers; base package modules only).
system-deps:
	@command -v sipp >/dev/null 2>&1 || { \
	  echo "installing sip-tester (sipp)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq sip-tester >/dev/null; }
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium (the console's browser tests drive /usr/bin/chromium)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@command -v baresip >/dev/null 2>&1 || { \
	  echo "installing baresip-core (baresip)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq baresip-core >/dev/null; }
	@command -v kamailio >/dev/null 2>&1 || { \
	  echo "installing kamailio (the SIP proxy in front of several workers: tests/cluster, deploy/)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq kamailio >/dev/null; }
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  echo "installing espeak-ng (second caller voice of bench/turn_taking.py's corpus)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq espeak-ng >/dev/null; }

lint: install
	$(VENV)/bin/ruff check src tests bench deploy/local-cluster
	$(VENV)/bin/ruff format --check src tests bench deploy/local-cluster

typecheck: install
	$(VENV)/bin/mypy src/flireo

pytest: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

## Everything CI checks: lint, types, the whole test suite.
test: install system-deps lint typecheck pytest

lock: $(PY)
	$(PIP) install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --extra dev \
	  --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
