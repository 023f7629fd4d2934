"""Small helpers shared by the sub-packages: atomic writes, weights by layer path."""
