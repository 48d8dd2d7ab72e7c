"""Masking helpers: secrets (passwords, keys) never reach a screen or an export unless asked.

Decoders mark secret byte ranges with ``Span.secret``; these helpers turn that into the offsets
to hide and into masked hex, and scrub known secret strings from free text (finding messages,
log lines) in their plain and hex spellings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from dlmsdoctor.codec.model import Span

MASK_BYTE = "**"
MASK_TEXT = "********"
MIN_HEX_SECRET = 3  # shorter secrets are not scrubbed in hex form: "00" is everywhere in hex


def secret_offsets(spans: Iterable[Span]) -> frozenset[int]:
    """Absolute offsets of every byte under a span marked secret, anywhere in the tree."""
    out: set[int] = set()
    for root in spans:
        for span in root.walk():
            if span.secret and span.length > 0:
                out.update(range(span.offset, span.offset + span.length))
    return frozenset(out)


def mask_bytes(data: bytes, spans: Iterable[Span], *, offset: int = 0) -> list[str]:
    """One display token per byte of ``data`` (which starts at absolute ``offset``): upper-case
    hex, or ``**`` for a secret byte."""
    hidden = secret_offsets(spans)
    return [MASK_BYTE if offset + i in hidden else f"{b:02X}" for i, b in enumerate(data)]


def masked_hex(data: bytes, spans: Iterable[Span], *, offset: int = 0, sep: str = " ") -> str:
    """``data`` as hex with secret bytes shown as ``**``."""
    return sep.join(mask_bytes(data, spans, offset=offset))


def mask_text(text: str, secrets: Iterable[str | bytes], placeholder: str = MASK_TEXT) -> str:
    """``text`` with every known secret replaced by ``placeholder``.

    Each secret is scrubbed as written and, when at least MIN_HEX_SECRET bytes long, in the hex
    spellings a message may carry (``31 32 33``, ``313233``, any case).
    """
    needles: set[str] = set()
    hex_needles: set[str] = set()
    for secret in secrets:
        if isinstance(secret, bytes):
            raw = secret
            with contextlib.suppress(UnicodeDecodeError):  # binary keys are scrubbed as hex only
                needles.add(secret.decode("utf-8"))
        else:
            raw = secret.encode("utf-8")
            needles.add(secret)
        if len(raw) >= MIN_HEX_SECRET:
            hex_needles.add(raw.hex(" ").upper())
            hex_needles.add(raw.hex().upper())
    for needle in sorted((n for n in needles if n), key=len, reverse=True):
        text = text.replace(needle, placeholder)
    for needle in sorted(hex_needles, key=len, reverse=True):
        text = _replace_casefold(text, needle, placeholder)
    return text


def _replace_casefold(text: str, needle: str, placeholder: str) -> str:
    """Replace ``needle`` (upper-case hex) in ``text`` whatever the case of its letters."""
    upper = text.upper()
    if needle not in upper:
        return text
    out: list[str] = []
    pos = 0
    while True:
        hit = upper.find(needle, pos)
        if hit < 0:
            break
        out.append(text[pos:hit])
        out.append(placeholder)
        pos = hit + len(needle)
    out.append(text[pos:])
    return "".join(out)
