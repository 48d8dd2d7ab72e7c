"""Diagnosis: rules over a Session's evidence -> ranked causes, actions, a working profile.

``diagnose(session) -> Diagnosis`` is the one entry point (``apply(session)`` also keeps the
verdict in the session); it settles the steps' statuses too (``steps.py``). Rules live in
``rules_*.py`` modules, one small function each, registered in ``registry.RULES`` in import
order (lower layers first).
"""

from __future__ import annotations

# Import order is rule order: network, bridge, client, link, stream, association, serial.
# isort: off
from dlmsdoctor.diagnosis import (  # noqa: F401
    rules_network,
    rules_bridge,
    rules_client,
    rules_link,
    rules_stream,
    rules_association,
    rules_serial,
)

# isort: on
from dlmsdoctor.diagnosis.facts import SessionFacts
from dlmsdoctor.diagnosis.profile import profile_forms
from dlmsdoctor.diagnosis.registry import BENIGN, RULES, Rule
from dlmsdoctor.diagnosis.verdict import apply, diagnose, is_note, rank

__all__ = [
    "BENIGN", "RULES", "Rule", "SessionFacts", "apply", "diagnose", "is_note", "profile_forms",
    "rank",
]
