"""Pure codecs: bytes in, annotated spans and findings out. No I/O, never raises on bad bytes."""
