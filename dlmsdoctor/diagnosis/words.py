"""How the diagnosis and the reports say figures and codec findings: one formatter per kind of
value, so a headline and its explanation round the same way ("34 ms" in both, never "0.034 s"
beside "0.03 s"), and a codec finding code ("hdlc.fcs.mismatch") is said in words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable


def number(value: float, lang: str = "en", digits: int = 1) -> str:
    """A decimal number the way each language writes it (Spanish: decimal comma)."""
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "es" else text


def duration(seconds: float | None, lang: str = "en") -> str:
    """A time span for people: "1.8 ms", "34 ms", "0.80 s" never; "1.25 s", "12 s"."""
    if seconds is None:
        return "-"
    if not math.isfinite(seconds):  # a damaged session file: say it, never crash
        return "∞ s" if seconds > 0 else "-"
    if seconds < 0.01:
        return f"{number(seconds * 1000, lang, 1)} ms"
    if seconds < 1.0:
        return f"{number(seconds * 1000, lang, 0)} ms"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    if seconds == int(seconds):
        return f"{int(seconds)} s"
    if seconds < 10.0:
        return f"{number(seconds, lang, 2)} s"
    return f"{number(seconds, lang, 0)} s"


def timeout_needed(delay: float) -> float:
    """The reply timeout a poller needs for an answer that took ``delay`` seconds: half as much
    again, rounded up to half a second, and at least a second more (every rule that advises a
    timeout says this one number)."""
    if not math.isfinite(delay) or delay <= 0:
        return 1.0
    delay = round(delay, 1)  # 2.003 s is 2 s: a millisecond more must not add a second
    return max(math.ceil(delay * 1.5 * 2) / 2, math.ceil(delay) + 1.0)


# Codec finding codes in plain words (English; Spanish in output/i18n.py CODEC_ES). ``tx``:
# for the frames we send; ``rx``: for frames the meter (or a bridge) sent. A bad checksum on
# our frame means the meter drops it; on the meter's frame, that it was damaged on the way.
CODEC_EN: dict[str, dict[str, str]] = {
    "hdlc.fcs.mismatch": {
        "tx": "the frame check sequence (FCS) is wrong: a meter drops such a frame silently",
        "rx": "the frame check sequence (FCS) is wrong: the frame was damaged on the way "
              "(noise, wrong serial settings)",
    },
    "hdlc.hcs.mismatch": {
        "tx": "the header check sequence (HCS) is wrong: a meter drops such a frame silently",
        "rx": "the header check sequence (HCS) is wrong: the frame was damaged on the way",
    },
    "hdlc.length.mismatch": {
        "tx": "the length field does not match the frame's size",
        "rx": "the length field does not match the frame's size",
    },
    "hdlc.length.truncated": {
        "tx": "the frame ends before its length says",
        "rx": "the frame ends before its length says (cut off)",
    },
    "hdlc.params.group_length": {
        "tx": "the SNRM's parameter group length is wrong",
        "rx": "the UA's parameter group length is wrong",
    },
    "session.secret_masked": {
        "tx": "the password bytes are masked (********)",
        "rx": "secret bytes are masked (********)",
    },
}


# Codes whose words do not depend on who sent the frame.
_SAME_BOTH_WAYS = {
    "apdu.aare.rejected": "the AARE rejects the association",
    "apdu.access_error": "the meter refused the access (access result not success)",
    "apdu.truncated": "the APDU ends before its content does",
    "apdu.unknown_tag": "an APDU type the decoder does not know",
    "apdu.trailing_bytes": "bytes after the end of the APDU",
    "hdlc.flag.missing_end": "the closing 7E flag is missing",
    "hdlc.flag.missing_start": "the opening 7E flag is missing",
    "hdlc.frame.short": "too few bytes for an HDLC frame",
    "hdlc.segment.incomplete": "a segmented message that never ended",
    "hdlc.segment.sequence": "segments out of sequence",
    "hdlc.direction.assumed": "the direction was assumed from the addresses",
    "hdlc.address.unterminated": "an address without its closing bit",
    "wrapper.version": "the wrapper version is not 1",
    "wrapper.length.mismatch": "the wrapper length does not match the bytes that follow",
    "wrapper.length.truncated": "the wrapper PDU ends before its length says",
    "stream.bridge.busy": "the bridge says its port is in use",
    "stream.bridge.kicked": "the bridge dropped us for a new client",
    "stream.bridge.device_busy": "the bridge's serial device is in use",
    "stream.bridge.device_error": "the bridge cannot open its serial device",
    "stream.bridge.denied": "the bridge refused this client",
    "stream.bridge.port_state": "the bridge port is disabled",
    "stream.bridge.no_free_port": "the bridge had no free port",
    "stream.echo": "our own bytes came back (echo)",
    "stream.iec62056_21": "IEC 62056-21 text, not DLMS",
    "stream.telnet": "telnet negotiation bytes",
    "stream.text": "text, not a DLMS frame",
    "stream.garbage": "bytes that are not a DLMS frame",
    "stream.truncated": "a frame cut off",
    "stream.bytes_outside_frame": "bytes outside any frame",
}
for _code, _text in _SAME_BOTH_WAYS.items():
    CODEC_EN.setdefault(_code, {"tx": _text, "rx": _text})


def codec_text(code: str, tx: bool) -> str:
    """A codec finding code in words for a frame we sent (``tx``) or received."""
    entry = CODEC_EN.get(code)
    if entry is not None:
        return entry["tx" if tx else "rx"]
    family = code.split(".")[0]
    return {"hdlc": "a malformed HDLC frame", "wrapper": "a malformed wrapper PDU",
            "apdu": "a malformed APDU", "stream": "bytes that are not a DLMS frame"}.get(
        family, "a malformed frame")


def codecs_text(codes: Iterable[str], tx: bool) -> str:
    return "; ".join(dict.fromkeys(codec_text(c, tx) for c in sorted(codes))) or (
        "bytes that are not a DLMS frame")


# Codes whose expected/found values are byte values (hex in the codec), not counts.
_BYTE_VALUES = frozenset({"hdlc.fcs.mismatch", "hdlc.hcs.mismatch", "hdlc.params.group_length",
                          "hdlc.params.format_id", "hdlc.params.group_id"})


def _bytes(value: str) -> str:
    return "0x" + "".join(value.split()).upper()


def expected_found(code: str, expected: str | None, found: str | None,
                   corrected: str | None) -> str:
    """"expected 0x14, found 0x12" said once: the right value is named apart only when it
    differs from the expected one (then it is the bytes to write, e.g. a whole format field)."""
    as_bytes = code in _BYTE_VALUES
    parts = []
    if expected is not None:
        parts.append(f"expected {_bytes(expected) if as_bytes else expected}")
    if found is not None:
        parts.append(f"found {_bytes(found) if as_bytes else found}")
    if corrected is not None and corrected != expected:
        parts.append(f"the right bytes are {_bytes(corrected)}")
    return ", ".join(parts)


_CONNECT_FAILED = re.compile(
    r"(?:\[Errno -?\d+\] )?Connect call failed \('([^']*)', (\d+)(?:, \d+, \d+)?\)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ")


def plain_error(text: str) -> str:
    """An operating system's message as a person reads it: Python's "Connect call failed
    ('127.0.0.1', 1)" becomes "nothing accepts connections at 127.0.0.1:1", errno prefixes go."""
    def address(m: re.Match[str]) -> str:
        host = f"[{m[1]}]" if ":" in m[1] else m[1]
        return f"nothing accepts connections at {host}:{m[2]}"

    return _ERRNO.sub("", _CONNECT_FAILED.sub(address, text))
