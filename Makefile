# rcm_gen — the two commands of the README, and the pieces behind them.
PY := .venv/bin/python
RCM := .venv/bin/rcm-gen
JOBS ?= 2

.PHONY: setup demo test test-fast test-long lint bench-sim bench-resnet18 bench-resnet8 \
	bench-array bench-power bench-tile-power bench-energy bench-synth bench-generate \
	bench-fpga-dsp clean

setup:
	@bash scripts/setup.sh

# The main job on the built-in defaults: generate the default MAC and lint it, simulate it on
# both simulators against numpy, synthesize it against its fixed baseline (area, timing),
# sweep the example design space (latency-vs-area fronts), map ResNet-18 onto the small
# tile at its synthesized clock, and measure the MAC's energy per operation against the fixed
# MAC's at gate level.
demo: setup
	$(RCM) generate mac16 -o out/mac16 --lint
	$(RCM) verify mac16
	$(RCM) synth mac16 --target asic --compare mac16-fixed --json out/mac16-synth.json
	$(RCM) dse --example --out out/dse -j $(JOBS)
	$(RCM) map rcm-small --network resnet18 --bits latency0.5 --synthesize \
	    --json out/resnet18-rcm-small.json
	$(RCM) power mac16 --compare mac16-fixed --cycles 2000 --json out/mac16-power.json

# Everything, as CI runs it.
test: setup
	$(PY) -m ruff check rcm_gen sim tests benchmarks
	$(PY) -m pytest -n $(JOBS) -m "not long" --durations=15

# Without the slow and synthesis suites.
test-fast: setup
	$(PY) -m pytest -n $(JOBS) -m "not slow and not synth and not long"

# The long checks CI leaves out (minutes each: the W=16 fusion MAC on both simulators, its
# multiplier in every mode in the Amaranth simulator; the Verilator runs of the fixed tile,
# the array and refused jobs whose Icarus runs make test keeps; the array filling its MACs
# with flip-flop buffers; block RAM on ECP5; the tile with SRAM buffers on Verilator; flat
# against hierarchical synthesis; map --synthesize through the synthesis cache; full-layer
# utilisation; a depthwise model through infer on Verilator).
test-long: setup
	$(PY) -m pytest -n $(JOBS) -m long --durations=15

bench-sim: setup
	$(PY) benchmarks/sim_speed.py

bench-resnet18: setup
	$(PY) benchmarks/resnet18_table.py rcm-default

# The MLPerf Tiny ResNet-8 (int8) layer by layer, checked against LiteRT on 100 inputs.
bench-resnet8: setup
	$(PY) benchmarks/resnet8_infer.py --preset rcm-default

# Utilisation of the 64-MAC array in RTL at 16/8/4 bits, flip-flop and SRAM-macro buffers.
bench-array: setup
	$(PY) benchmarks/tile_utilisation.py --preset rcm-8x8 --spatial 1 --memory ff
	$(PY) benchmarks/tile_utilisation.py --preset rcm-8x8 --spatial 1 --memory sram --no-fixed

# Gate-level power of mac16 in its six modes, 10,000 cycles each (goal: 60 s, warm cache).
bench-power: setup
	$(PY) benchmarks/power_mac.py --preset mac16 --cycles 10000

# A tile's energy from real layers at gate level (goal: one rcm-small layer in 5 min), beside
# its fixed twin, on OSU 0.18 um and on sky130 with SRAM macros; wall time printed.
bench-tile-power: setup
	$(RCM) power rcm-small --compare rcm-small-fixed
	$(RCM) power rcm-small --set memory=sram --liberty tests/data/sky130_fd_sc_hd__tt_025C_1v80.lib.gz \
		--compare rcm-small-fixed

# Energy per inference and EDP of ResNet-18 (latency0.5) on rcm-default and its fixed twin,
# from tile energy models calibrated at gate level (about 10 min with a synthesis cache).
bench-energy: setup
	$(RCM) map rcm-default --network resnet18 --bits latency0.5 --energy --synthesize

# Hierarchical synthesis and timing of a large tile, with empty and with filled caches,
# wall and CPU time per phase, on OSU 0.18 um (flip-flop buffers) and on sky130 (buffers
# bound as the design point says: SRAM macros where smaller).  BENCH_TILE picks the design
# point, e.g. make bench-synth BENCH_TILE="--preset rcm-8x8"
BENCH_TILE ?= --preset rcm-16x16
bench-synth: setup
	$(PY) benchmarks/synth_scaling.py tile $(BENCH_TILE)
	$(PY) benchmarks/synth_scaling.py tile $(BENCH_TILE) \
	    --liberty tests/data/sky130_fd_sc_hd__tt_025C_1v80.lib.gz

# The DSP-block ST MACs (arch dsp) against the fixed MACs on ECP5 and Nexus: LUTs, DSPs,
# Fmax, products per cycle and the goal of each mode (a couple of minutes, cached after).
bench-fpga-dsp: setup
	$(PY) benchmarks/fpga_dsp.py

# Wall and CPU time of rcm-gen generate, the Verilog's size and module count, on rcm-default
# and the 256-MAC rcm-16x16 (goal: 5 s and 1 MB), three runs each (the fastest printed).
bench-generate: setup
	$(PY) benchmarks/generate_speed.py rcm-default rcm-16x16 --repeat 3

clean:
	rm -rf out build .pytest_cache
