"""Flow settings as data: clock targets, cell libraries, FPGA devices (installed as
``rcm_gen.constraints``)."""
