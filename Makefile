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

.PHONY: install demo test bench clean

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
	@echo
	@echo "Demo corpus:      $(DEMO_DIR)/ (settings in $(CONFIG), planted truth in $(DEMO_DIR)/truth.json)"
	@echo "Run artifacts:    $(WORKDIR)/ (manifest.json lists every artifact and what produced it)"
	@echo "Lookup:           $(WORKDIR)/inference_lookup.csv, $(WORKDIR)/embeddings.parquet"
	@echo "Skipped tracks:   $(WORKDIR)/reports/"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/bench_features.py
	$(BIN)/python bench/bench_network.py
	$(BIN)/python bench/bench_infer.py

clean:
	rm -rf $(WORKDIR) $(DEMO_DIR) bench/out tests/artifacts
