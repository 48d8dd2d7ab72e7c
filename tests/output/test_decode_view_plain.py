"""The plain one-line view of a frame with nothing to report is brief_lines' text, exactly."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from dlmsdoctor.codec.decode import Chunk, DecodeOptions, iter_decode
from dlmsdoctor.codec.hexinput import HexChunk, iter_hex_input
from dlmsdoctor.output.decode_view import LinePrinter, brief_lines, brief_plain

VECTORS = Path(__file__).parent.parent / "vectors"


def test_brief_plain_is_brief_lines_text_for_frames_without_findings() -> None:
    lines = (VECTORS / "poll_mix.log").read_text().splitlines()
    chunks = [Chunk(c.data, c.direction) for c in iter_hex_input(lines) if isinstance(c, HexChunk)]
    chunks += [Chunk(b"Port already in use\r\n"), Chunk(b"\x07bell\x0b and text\x0c\r\n", "rx")]
    seen = 0
    for fd in iter_decode(chunks, options=DecodeOptions(spans=False)):
        plain = brief_plain(fd)
        if plain is None:
            assert fd.findings
            continue
        seen += 1
        assert [plain] == [line.plain for line in brief_lines(fd)]
    assert seen > 500


def test_plain_lines_are_written_in_order_and_all_of_them() -> None:
    out = io.StringIO()
    printer = LinePrinter(Console(file=out, color_system=None, width=80))
    assert printer.plain
    for i in range(3000):
        printer.write(f"line {i}")
    assert out.getvalue().count("\n") < 3000  # gathered, not written one by one
    printer.flush()
    assert out.getvalue().splitlines() == [f"line {i}" for i in range(3000)]
