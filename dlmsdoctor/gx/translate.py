"""gurux's own reading of APDUs and frames as XML (cross-checks and the ``--xml`` view)."""

from __future__ import annotations

import contextlib
import io
from typing import Any


class TranslateError(Exception):
    """gurux could not translate the bytes (its message is kept)."""


_translator: Any = None


def _get_translator() -> Any:
    global _translator
    if _translator is None:
        from gurux_dlms import GXDLMSTranslator
        from gurux_dlms.enums import TranslatorOutputType

        _translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
        _translator.comments = False
    return _translator


def apdu_to_xml(apdu: bytes) -> str:
    """One APDU (no HDLC or wrapper framing) as gurux's simple XML."""
    translator = _get_translator()
    # gurux prints diagnostics ("Unknown tag: 0.") on stdout; keep them out of ours.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return str(translator.pduToXml(bytes(apdu)))
        except Exception as exc:  # gurux raises bare Exception/ValueError on bad bytes
            raise TranslateError(f"gurux could not translate the APDU: {exc}") from exc


def frame_to_xml(frame: bytes) -> str:
    """One HDLC frame or wrapper PDU as gurux's XML (framing included)."""
    translator = _get_translator()
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return str(translator.messageToXml(bytearray(frame)))
        except Exception as exc:
            raise TranslateError(f"gurux could not translate the frame: {exc}") from exc
