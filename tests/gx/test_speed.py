"""Decode speed against gurux's translator on the same APDUs (slow: run with -m slow)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dlmsdoctor.codec.apdu import decode_apdu

VECTORS = [
    bytes.fromhex(v["hex"])
    for path in sorted((Path(__file__).resolve().parents[1] / "vectors").glob("apdu_*.json"))
    for v in json.loads(path.read_text())["vectors"]
    if v["valid"]
    and v["name"]
    not in (
        "exception_invocation_counter",
        "data_notification_real_kaifa_list1",
        "data_notification_real_kaifa_list2",
    )
]


def rate(fn: Callable[[bytes], object], seconds: float) -> float:
    """APDUs per second over one round of about ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for apdu in VECTORS:
            fn(apdu)
        count += len(VECTORS)
    return count / (time.perf_counter() - start)


@pytest.mark.slow
def test_apdu_decode_is_at_least_twice_the_translator_rate() -> None:
    from gurux_dlms import GXDLMSTranslator
    from gurux_dlms.enums import TranslatorOutputType

    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    ours = theirs = 0.0
    # Interleaved rounds, best of each: a busy machine slows both sides alike.
    for _ in range(5):
        ours = max(ours, rate(decode_apdu, 0.2))
        with contextlib.redirect_stdout(io.StringIO()):
            theirs = max(theirs, rate(translator.pduToXml, 0.2))
    assert ours >= 2 * theirs, f"ours {ours:.0f}/s, gurux {theirs:.0f}/s"
