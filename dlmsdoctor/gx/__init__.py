"""The gurux-dlms adapter: the only package that imports ``gurux_dlms``.

Nothing here returns a ``GX*`` object: APDUs go in and out as bytes, results as plain
dataclasses. gurux is imported inside the functions that need it (about 0.17 s), so
importing this package is cheap.
"""
