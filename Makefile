# `make run` and `make test` set everything up from requirements.lock first.
VENV ?= .venv
PY := $(VENV)/bin/python
TFXP := $(VENV)/bin/tfxp
export TF_USE_LEGACY_KERAS := 1

.PHONY: setup run test test-fast lint bench lock clean

setup:
	@scripts/setup.sh $(VENV)

## Run the whole pipeline locally on the shipped taxi data (ARGS="--root DIR ...").
run: setup
	$(TFXP) run $(ARGS)

## All tests: unit, component and end-to-end on a sample of the real data.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

## Unit and component tests only (no end-to-end pipeline runs).
test-fast: setup
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

## Lint and import order (ruff, configured in ruff.toml).
lint: setup
	$(VENV)/bin/ruff check .

## TFX's taxi example vs this pipeline: wall time and peak memory, per component, AUC,
## serving latency (median of 3), and one run at 10x the data; writes bench-results/bench.json
## and a chart of time and memory against data size (bench.svg). SCALES=10,100,1000 (ours)
## and PEER_SCALES=10,100 (TFX's example, killed after --peer-timeout, 3600 s) run more
## sizes, each model scored on each size's eval split; ARGS="--repeat 5 ..." anything else.
bench: setup
	$(PY) -m benchmarks.bench $(if $(SCALES),--scales $(SCALES)) \
	  $(if $(PEER_SCALES),--peer-scales $(PEER_SCALES)) $(ARGS)

## Re-resolve requirements.lock from requirements.in (needs network to PyPI).
lock: setup
	$(VENV)/bin/uv pip compile requirements.in -c constraints-tfx-1.16.0.txt \
	  --python-version 3.10 --no-header -o requirements.lock

clean:
	rm -rf runs .pytest_cache
