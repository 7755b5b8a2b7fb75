# Every target creates and fills .venv on its own, so a fresh clone needs only `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every dependency pinned with its hashes; regenerated from pyproject.toml by `make lock`.
LOCK   := requirements/dev.lock
# uv itself, pinned with its hashes: it installs the lock in seconds where pip takes minutes.
BOOTSTRAP := requirements/bootstrap.lock
UV     := $(BIN)/uv pip install --quiet --python $(BIN)/python
# torch is the local CPU wheel 2.13.0+cpu, found where pip's configuration says
# (PIP_FIND_LINKS=/opt/wheels on these machines); the lock pins its hash, so nothing resolves
# to a CUDA build.
FIND_LINKS := $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS))

# Python keeps compiled bytecode beside what it imports, unless PYTHONDONTWRITEBYTECODE is set (as
# on these machines): then every process compiles every module it imports again, 2 s more for
# each `hwlat serve` start, and the tests start hundreds of processes. uv does not compile at
# install either, so every target here lets Python write its caches.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: test checks lint typecheck audit unit bench demo lock clean

$(STAMP): pyproject.toml $(LOCK) $(BOOTSTRAP)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(BOOTSTRAP)
	# Exactly the locked versions, each checked against its hash.
	$(UV) --require-hashes $(FIND_LINKS) -r $(LOCK)
	$(UV) --no-deps -e .
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The tests drive Debian's chromium and QEMU, and start a PostgreSQL cluster of their own when
# none answers: this installs what is missing (needs root). The slowest tests are listed at the
# end of every run, so that the slow set stays visible.
unit: $(STAMP)
	bash scripts/ensure_test_tools.sh
	$(BIN)/pytest -n 2 --dist loadscope --no-loadscope-reorder --durations 15

# Known vulnerabilities in the locked versions (PyPI advisory data), without installing;
# AUDIT_ARGS=--require-data also fails when the advisory data cannot be fetched.
audit: $(STAMP)
	$(BIN)/python -m scripts.audit $(LOCK) $(AUDIT_ARGS)

# ruff first (a second, and the commonest failure); then mypy (one core, 20 s) and the audit
# (mostly waiting on the network) beside the tests, whose two workers leave room for them.
test: $(STAMP)
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory -j 3 --output-sync=line typecheck audit unit

checks: lint typecheck

# Regenerate requirements/*.lock from pyproject.toml after adding or changing a dependency.
lock: $(STAMP)
	BIN=$(BIN) ./scripts/lock.sh

# The main job end to end on this machine; extra flags through DEMO_ARGS (e.g. --keep-serving).
demo: $(STAMP)
	$(BIN)/hwlat demo $(DEMO_ARGS)

# Writes docs/bench/*.json, then docs/benchmarks.md and docs/reliability.md from them. The
# search benchmark uses its own service with the seed's Pixel 1 table unless SEARCH_BENCH_ARGS
# names a device, e.g. SEARCH_BENCH_ARGS="--device 1 --measure --run-host-agent" with
# HWLAT_SERVICE_URL/HWLAT_TOKEN.
bench: $(STAMP)
	$(BIN)/python -m scripts.bench_export
	$(BIN)/python -m scripts.bench_assemble
	$(BIN)/python -m scripts.bench_profile
	$(BIN)/python -m scripts.bench_ingest
	$(BIN)/python -m scripts.bench_predict
	$(BIN)/python -m scripts.bench_interference
	$(BIN)/python -m scripts.bench_accuracy
	$(BIN)/python -m scripts.bench_accuracy --disturb
	$(BIN)/python -m scripts.bench_ofa
	$(BIN)/python -m scripts.bench_devices
	$(BIN)/python -m scripts.bench_new_device
	$(BIN)/python -m scripts.bench_figs
	$(BIN)/python -m scripts.bench_memory
	$(BIN)/python -m scripts.bench_pareto_memory
	$(BIN)/python -m scripts.bench_search $(SEARCH_BENCH_ARGS)
	$(BIN)/python -m scripts.bench_report
	$(BIN)/python -m scripts.bench_ingest --agents 20 --workers 2 --backends postgresql --batch-sizes 1000
	$(BIN)/python -m scripts.bench_faults
	$(BIN)/python -m scripts.fuzz_api --max-examples 200
	$(BIN)/python -m scripts.access_matrix
	$(BIN)/python -m scripts.reliability_report

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hwlat-demo
