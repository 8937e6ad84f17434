# Slipway: `make demo` runs the whole product on this machine; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
SIM_PORT ?= 5985
PYTEST_ARGS ?=

.PHONY: demo test install browser check bench clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 has no venv module; installing Debian's python3-venv"; rm -rf $(VENV); \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests; Playwright drives it, it never downloads a browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { echo "chromium is missing and could not be installed: the browser tests cannot run" >&2; exit 1; }

demo: $(STAMP)
	$(BIN)/python manage.py demo --host $(HOST) --port $(PORT) --sim-port $(SIM_PORT)

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP)
	SECRET_KEY=check-deploy-key-$$(date +%s)-long-enough-to-be-random-looking-abcdefghijklmnop ALLOWED_HOSTS=slipway.example.com \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: $(STAMP)
	$(BIN)/python manage.py bench wire --vms 10000
	$(BIN)/python manage.py bench inventory --vms 10000
	$(BIN)/python manage.py bench batch-checkpoint --vms 500
	$(BIN)/python manage.py bench events --watchers 200

clean:
	rm -rf $(VENV) data
