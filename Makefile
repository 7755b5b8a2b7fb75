# Every target creates and fills .venv on its own, so a fresh clone needs only `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint typecheck unit bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: the pinned CPU wheel is on local disk; an unpinned resolve downloads CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n 2

test: lint typecheck unit

# The main job end to end on this machine; extra flags through DEMO_ARGS (e.g. --keep-serving).
demo: $(STAMP)
	$(BIN)/hwlat demo $(DEMO_ARGS)

# Writes docs/bench/*.json, then docs/benchmarks.md from them. The search benchmark uses its
# own service with the seed's Pixel 1 table unless SEARCH_BENCH_ARGS names a device, e.g.
# SEARCH_BENCH_ARGS="--device 1 --measure --run-host-agent" with HWLAT_SERVICE_URL/HWLAT_TOKEN.
bench: $(STAMP)
	$(BIN)/python -m scripts.bench_export
	$(BIN)/python -m scripts.bench_profile
	$(BIN)/python -m scripts.bench_ingest
	$(BIN)/python -m scripts.bench_predict
	$(BIN)/python -m scripts.bench_accuracy
	$(BIN)/python -m scripts.bench_search $(SEARCH_BENCH_ARGS)
	$(BIN)/python -m scripts.bench_report

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hwlat-demo
