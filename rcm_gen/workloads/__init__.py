"""Workloads: networks with per-layer bit widths, and mapping them onto a design point."""
