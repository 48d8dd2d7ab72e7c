"""Check a session JSON document field by field before anything uses it.

A damaged file (edited by hand, cut short, from another tool) must give one line that names the
field, ``frames[3].data: expected hex``, not a Python message (``'status'``,
``non-hexadecimal number found in fromhex() arg``) or, worse, a crash later in the rules when a
time is a string. ``Session.from_json`` reads every field by its type and says where it failed;
this is the check on its own, for callers that only want to know.
"""

from __future__ import annotations

from typing import Any

from dlmsdoctor.session import Session


def check_session_doc(doc: Any) -> None:
    """Raise SessionFormatError naming the first field that is missing or of the wrong type.

    A document that is not a session at all (no schema) is left to ``Session.from_json``."""
    if not isinstance(doc, dict) or "schema" not in doc:
        return
    Session.from_json(doc)
