"""Tool flows: lint, synthesis (ASIC and FPGA) and static timing."""
