"""Amaranth gateware: multipliers, MAC, and the convolution tile."""
