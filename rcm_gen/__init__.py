"""rcm_gen: a generator for a run-time reconfigurable, precision-scalable 2D-convolution
module (RCM) — Verilog, simulation, synthesis, design-space exploration, workload mapping."""

__version__ = "0.1.0"
