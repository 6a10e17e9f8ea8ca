# Set-up and entry points. `make demo` and `make test` work on a fresh machine with only
# Python 3.11 and make: both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo
WORKDIR ?= data
DEMO_TRACKS ?= 240
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
	$(BIN)/moodscape features --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/moodscape cluster --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/moodscape label --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/moodscape pretrain --config $(CONFIG) --workdir $(WORKDIR)
	$(BIN)/moodscape train --config $(CONFIG) --workdir $(WORKDIR)
	@echo
	@echo "Demo corpus:      $(DEMO_DIR)/ (settings in $(CONFIG), planted truth in $(DEMO_DIR)/truth.json)"
	@echo "Run artifacts:    $(WORKDIR)/ (features.parquet, clusters.csv, cluster_selection.json,"
	@echo "                  cluster_profiles.json, tracks_with_cluster_names.csv, label_to_idx.json, manifest.json,"
	@echo "                  models/backbone.pt, models/classifier.pt, metrics/pretrain.json, metrics/classifier.json)"
	@echo "Skipped tracks:   $(WORKDIR)/reports/"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/bench_features.py

clean:
	rm -rf $(WORKDIR) $(DEMO_DIR) bench/out tests/artifacts
