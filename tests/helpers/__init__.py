"""Fixtures shared across test folders (a real ser2net bridge, ...)."""
