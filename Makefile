# Set-up and entry points. `make demo` and `make test` work on a fresh machine with only
# Python 3.11 and make: both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo
WORKDIR ?= data
DEMO_TRACKS ?= 200
CONFIG := $(DEMO_DIR)/moodscape.toml
PYTEST_ARGS ?=
SERVE ?= 1
ABLATE ?= 0
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
CHROMIUM := /usr/bin/chromium

.PHONY: install demo serve test browser js bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

$(CONFIG): | $(STAMP)
	$(BIN)/moodscape demo-data --out $(DEMO_DIR) --tracks $(DEMO_TRACKS)

demo: $(STAMP) $(CONFIG)
	$(BIN)/moodscape run --config $(CONFIG) --workdir $(WORKDIR)
ifneq ($(ABLATE),0)
	$(BIN)/moodscape ablate --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/moodscape report --config $(CONFIG) --workdir $(WORKDIR)
endif
	@echo
	@echo "Demo corpus:      $(DEMO_DIR)/ (settings in $(CONFIG), planted truth in $(DEMO_DIR)/truth.json)"
	@echo "Run artifacts:    $(WORKDIR)/ (manifest.json lists every artifact and what produced it)"
	@echo "Lookup:           $(WORKDIR)/inference_lookup.csv, $(WORKDIR)/embeddings.parquet"
	@echo "Skipped tracks:   $(WORKDIR)/reports/"
	@echo "Report:           $(WORKDIR)/report/report.html (open it in a browser; also at /report in the web app)"
ifneq ($(SERVE),0)
	@echo
	$(BIN)/moodscape serve --bundle $(WORKDIR) --host $(HOST) --port $(PORT) --workers $(WORKERS)
endif

# The web app over an existing run (make demo SERVE=0 first, or any work directory).
serve: $(STAMP)
	$(BIN)/moodscape serve --bundle $(WORKDIR) --host $(HOST) --port $(PORT) --workers $(WORKERS)

# Debian's chromium for the browser test (Playwright's own download cannot reach its host
# here). Installed when missing and we are root; otherwise the browser test says why it skips.
browser:
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium not installed (needs root and apt): the browser test will skip"; }

# node and the npm client of the Subsonic client test (tests/js): Debian's nodejs when missing and
# we are root, the locked package (npm ci) when not installed yet; otherwise that test says why it skips.
js:
	@command -v node >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null) || \
		echo "node not installed (needs root and apt): the JavaScript Subsonic client test will skip"; }
	@test -d tests/js/node_modules || ! command -v npm >/dev/null || npm ci --prefix tests/js --no-audit --no-fund --silent || \
		echo "npm ci failed: the JavaScript Subsonic client test will skip"

# One pytest-xdist worker per core (at most 4), a test module's tests on one worker
# (so its module fixtures are built once), the longest modules first (tests/conftest.py); PYTEST_ARGS="-n 0" runs in one process.
test: $(STAMP) browser js
	@command -v mpd >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq mpd >/dev/null) || \
		echo "mpd not installed (needs root and apt): the MPD test will skip"; }
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

bench: $(STAMP)
	@command -v wrk >/dev/null || { test "$$(id -u)" = 0 && apt-get install -y -qq wrk >/dev/null; } || \
		echo "wrk not installed: bench_serve.py falls back to its Python client"
	$(BIN)/python bench/bench_features.py
	$(BIN)/python bench/bench_network.py
	$(BIN)/python bench/bench_infer.py
	$(BIN)/python bench/bench_serve.py

clean:
	rm -rf $(WORKDIR) $(DEMO_DIR) bench/out tests/artifacts
