"""cocotb testbenches, drivers and monitors for rcm_gen designs, and the runner glue.

Installed as ``rcm_gen.sim`` so that the simulator's embedded Python finds the test
modules wherever rcm_gen is installed.
"""
