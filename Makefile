# rcm_gen — the two commands of the README, and the pieces behind them.
PY := .venv/bin/python
RCM := .venv/bin/rcm-gen
JOBS ?= 2

.PHONY: setup demo test test-fast lint bench-sim clean

setup:
	@bash scripts/setup.sh

# The main job on the built-in default.
demo: setup
	$(RCM) generate mac16 -o out/mac16 --lint
	$(RCM) verify mac16

# Everything, as CI runs it.
test: setup
	$(PY) -m ruff check rcm_gen sim tests benchmarks
	$(PY) -m pytest -n $(JOBS) --durations=15

# Without the slow and synthesis suites.
test-fast: setup
	$(PY) -m pytest -n $(JOBS) -m "not slow and not synth"

bench-sim: setup
	$(PY) benchmarks/sim_speed.py

clean:
	rm -rf out build .pytest_cache
