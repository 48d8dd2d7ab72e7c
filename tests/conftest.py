"""Settings shared by every test.

Property tests (hypothesis) draw the same examples on every run by default: a red CI then
points at a change, not at a lucky draw, and any failure replays. To look for new failing
inputs, draw fresh ones (and more of them):

    HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest tests/codec
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
