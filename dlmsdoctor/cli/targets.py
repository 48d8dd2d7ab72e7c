"""The CLI's view of a target: the classification lives in ``dlmsdoctor.targets`` (the TUI's
form reads it too); kept here so ``dlmsdoctor.cli.targets`` goes on naming it."""

from __future__ import annotations

from dlmsdoctor.targets import describe, link_of, options_for

__all__ = ["describe", "link_of", "options_for"]
