"""The tile's host side: its configuration, the driver that cuts layers into jobs, the
analytic cycle model, and the glue that runs layers through the RTL in simulation.

Submodules are imported where used (``rcm_gen.tile.config``, ``.driver``, ``.cycles``,
``.sim``, ``.verify``, ``.cli``), so that importing the configuration stays light.
"""
