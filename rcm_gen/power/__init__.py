"""Energy: per-net activity of gate-level simulations turned into energy with a liberty
(MACs, tiles), and the tile energy model that networks are costed with."""
