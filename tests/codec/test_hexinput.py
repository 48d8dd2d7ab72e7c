"""parse_hex_input: the vectors file, continuation rules, and never raising."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.hexinput import HexInput, parse_hex_input

VECTORS = Path(__file__).parent.parent / "vectors" / "hexinput_lines.txt"


def load_cases() -> list[tuple[str, str, list[str]]]:
    cases: list[tuple[str, str, list[str]]] = []
    name = ""
    section = ""
    inp: list[str] = []
    exp: list[str] = []
    for raw in [*VECTORS.read_text(encoding="utf-8").split("\n"), "=== end"]:
        if raw.startswith("=== "):
            if name:
                cases.append((name, "\n".join(inp).strip("\n"), [e for e in exp if e.strip()]))
            name, section, inp, exp = raw[4:], "", [], []
        elif raw.startswith("--- "):
            section = raw[4:]
        elif section == "input":
            inp.append(raw)
        elif section == "expect":
            exp.append(raw)
    return cases


CASES = load_cases()


def describe(result: HexInput) -> list[str]:
    out = []
    for c in result.chunks:
        line = f"chunk {c.line} {c.direction or '-'} {c.data.hex()}"
        out.append(line + (f" ts={c.timestamp}" if c.timestamp else ""))
    return out


@pytest.mark.parametrize(("name", "text", "expect"), CASES, ids=[c[0] for c in CASES])
def test_vector(name: str, text: str, expect: list[str]) -> None:
    result = parse_hex_input(text)
    assert describe(result) == [e for e in expect if e.startswith("chunk ")]
    wanted = [e.split(" ", 2) for e in expect if e.startswith("problem ")]
    assert len(result.problems) == len(wanted), result.problems
    for problem, (_, line, fragment) in zip(result.problems, wanted, strict=True):
        assert problem.line == int(line)
        assert fragment in problem.message, problem.message
        assert problem.source == text.split("\n")[problem.line - 1]


def test_vectors_file_has_many_cases() -> None:
    assert len(CASES) >= 20
    assert sum(len(e) for _, _, e in CASES) >= 40


def test_source_and_line_kept_for_continued_chunks() -> None:
    text = "\nRX 7E A0 07\n03 21 93 0F 01 7E\n"
    (chunk,) = parse_hex_input(text).chunks
    assert chunk.line == 2 and chunk.source == "RX 7E A0 07\n03 21 93 0F 01 7E"
    assert chunk.direction == "rx"
    assert parse_hex_input(text).data == bytes.fromhex("7EA0070321930F017E")


def test_bare_lines_after_a_marked_line_without_hex_do_not_continue() -> None:
    text = "TX done\n7E A0 07 03 21 93 0F 01 7E"
    (chunk,) = parse_hex_input(text).chunks
    assert chunk.direction is None and chunk.line == 2


def test_bad_bytes_literal_is_a_problem() -> None:
    result = parse_hex_input("b'\\x7'")
    assert not result.chunks and result.problems[0].line == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from([
                "TX", "RX:", "<-", "0x", "\\x", "b'", "7E A0", "0000  ", "00000010  ", "|", "  ",
                "2025-10-30 14:51:48,452", "\t", "Face", "7", ":", "-",
            ]),
        ),
        max_size=20,
    ).map(" ".join)
)  # fmt: skip
def test_never_raises(text: str) -> None:
    result = parse_hex_input(text + "\n" + text.replace(" ", "\n"))
    for chunk in result.chunks:
        assert chunk.data and chunk.line >= 1
        assert chunk.direction in (None, "tx", "rx")


def _hexdump_c(data: bytes) -> str:
    """The layout of util-linux ``hexdump -C``."""
    rows = []
    for off in range(0, len(data), 16):
        row = data[off : off + 16]
        left = " ".join(f"{b:02x}" for b in row[:8])
        right = " ".join(f"{b:02x}" for b in row[8:])
        ascii_col = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        rows.append(f"{off:08x}  {left:<23}  {right:<23}  |{ascii_col}|")
    rows.append(f"{len(data):08x}")
    return "\n".join(rows)


FORMS = {
    "spaced": lambda d: d.hex(" ").upper(),
    "compact": lambda d: d.hex(),
    "0x list": lambda d: ", ".join(f"0x{b:02X}" for b in d),
    "escapes": lambda d: "".join(f"\\x{b:02x}" for b in d),
    "repr": repr,
    "colons": lambda d: d.hex(":"),
    "dashes": lambda d: d.hex("-").upper(),
    "tx line": lambda d: "TX " + d.hex(" ").upper(),
    "rx log": lambda d: "[2025-10-30 14:51:48.452] RX: " + d.hex(" "),
    "python log": lambda d: "2025-10-30 14:51:48,452 DEBUG dlms: Sent " + d.hex(" ").upper(),
    "words": lambda d: "Frame HDLC enviado: " + d.hex(" ").upper(),
    "hexdump -C": _hexdump_c,
}


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=2, max_size=80), form=st.sampled_from(sorted(FORMS)))
def test_every_form_reads_back_the_bytes(data: bytes, form: str) -> None:
    text = FORMS[form](data)
    if form == "compact" and not any(c.isdigit() for c in text):
        return  # "cafe", "decade": letters-only compact hex is indistinguishable from words
    result = parse_hex_input(text)
    assert not result.problems, (text, result.problems)
    assert result.data == data, text
    assert len(result.chunks) == 1


TOOLS = {
    "hexdump -C": ["hexdump", "-C"],
    "hexdump": ["hexdump"],
    "xxd": ["xxd"],
    "od": ["od", "-A", "x", "-t", "x1z", "-v"],
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("size", [1, 9, 16, 17, 33, 200, -70])
def test_real_dump_tools_read_back(tool: str, size: int) -> None:
    """Real dump tools on this machine; size < 0: zeros, which hexdump and od fold into '*'."""
    import random
    import shutil
    import subprocess

    argv = [a for a in TOOLS[tool] if size > 0 or a != "-v"]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} not installed")
    data = random.Random(size).randbytes(size) if size > 0 else b"\x7e" + bytes(-size) + b"\x7e"
    dump = subprocess.run(argv, input=data, capture_output=True, check=True).stdout.decode()
    result = parse_hex_input(dump)
    assert not result.problems, dump
    assert result.data == data, dump
    assert len(result.chunks) == 1


def test_binary_input_is_told_from_text() -> None:
    import os

    from dlmsdoctor.codec.hexinput import binary_reason

    assert binary_reason(b"TX 7E A0 07 03 21 93 0F 01 7E\r\n\tRX: \x1b[32m7E\x1b[0m\n") is None
    assert binary_reason("Recibido: trama HDLC ✓ 7E A0\n".encode()) is None
    assert binary_reason(b"") is None
    latin1 = "[2025-10-30 14:51:48] Recibido (válido): 7E A0 07 21 03 73 01 40 7E\n" * 3
    assert binary_reason(latin1.encode("latin-1")) is None
    assert "NUL" in (binary_reason(b"7E A0 \x00 07") or "")
    assert "UTF-8" in (binary_reason(b"7E \xff\xfe A0 07 03 21 93") or "")
    assert binary_reason("7E ✓".encode()[:-1]) is None  # a block cut inside a character
    assert binary_reason("7E ✓".encode()[:-1], final=True) is not None
    assert "control" in (binary_reason(bytes([1, 2, 3, 4]) + b"7E A0 07 03") or "")
    random = os.urandom(5000)
    assert binary_reason(random) is not None
    assert binary_reason(bytes(range(0x7E, 0x7F)) * 3 + b"\x7e\xa0\x07\x03\x21\x93") is not None


def test_iter_hex_input_streams_an_endless_log() -> None:
    """Each chunk comes out once the next line shows it complete: memory does not grow."""
    import itertools

    from dlmsdoctor.codec.hexinput import HexChunk, iter_hex_input

    consumed = 0

    def endless() -> Iterator[str]:
        nonlocal consumed
        for line in itertools.cycle(["TX 7E A0 07 03 21 93 0F 01 7E", "RX: 7E A0 07 21 03 73"]):
            consumed += 1
            yield line

    chunks = list(itertools.islice(iter_hex_input(endless()), 1000))
    assert all(isinstance(c, HexChunk) for c in chunks)
    assert consumed <= 1001
    assert [c.direction for c in chunks[:2] if isinstance(c, HexChunk)] == ["tx", "rx"]


# --------------------------------------------------------------------------- one frame per line


def test_undirected_lines_one_frame_each_are_separate_chunks() -> None:
    # A damaged line (its length says more than it holds) must not swallow the next line.
    text = "7E A0 07 03 21 93 0F 01 7E\n7E A0 20 03 21 93 0F 01 7E\n7E A0 07 03 21 53 03 C7 7E\n"
    chunks = parse_hex_input(text).chunks
    assert [c.line for c in chunks] == [1, 2, 3]


def test_a_frame_over_several_bare_lines_is_one_chunk_then_the_next_frame_is_its_own() -> None:
    text = (
        "7E A0 1E 21 03 73 C3 7A 81 80 12 05 01 80\n"
        "06 01 80 07 04 00 00 00 01 08 04 00 00 00 01\n"
        "53 3B 7E\n"
        "7E A0 07 03 21 93 0F 01 7E\n"
    )
    chunks = parse_hex_input(text).chunks
    assert [(c.line, len(c.data)) for c in chunks] == [(1, 32), (4, 9)]


def test_timestamped_lines_same_direction_each_its_own_unless_a_frame_is_cut() -> None:
    text = (
        "[2025-10-30 14:51:48.452] RX: 7E A0 20 03 21 93 0F 01 7E\n"  # length says 0x20: damaged
        "[2025-10-30 14:51:48.460] RX: 7E A0 07 03 21 53 03 C7 7E\n"  # a whole frame: its own
        "[2025-10-30 14:51:49.000] RX: 7E A0 1E 21 03 73 C3 7A 81 80 12\n"  # cut by the logger
        "[2025-10-30 14:51:49.010] RX: 05 01 80 06 01 80 07 04 00 00 00 01 08 04 00 00 00 01 "
        "53 3B 7E\n"
    )
    chunks = parse_hex_input(text).chunks
    assert [c.line for c in chunks] == [1, 2, 3]
    assert len(chunks[2].data) == 32


def test_a_long_bare_dump_of_other_bytes_stays_one_chunk() -> None:
    text = "C0 01 C1 00 03 01 00 01\n08 00 FF 02 00\n"
    (chunk,) = parse_hex_input(text).chunks
    assert chunk.data == bytes.fromhex("C001C1000301000108 00FF0200".replace(" ", ""))


# --------------------------------------------------------------------------- the short cut


@settings(max_examples=500, deadline=None)
@given(
    ts=st.sampled_from(["", "[2025-10-30 14:51:48.452] ", "2025-10-30 14:51:48,452 ", "[12:00] ",
                        "[2025-10-30T14:51:48Z] ", "[not a time at all] "]),
    word=st.sampled_from(["TX", "RX", "tx", "Rx", "", "TX:", "RX: "]),
    data=st.binary(min_size=1, max_size=40),
    spaced=st.booleans(),
    upper=st.booleans(),
)  # fmt: skip
def test_fast_line_forms_read_like_the_general_reader(
    ts: str, word: str, data: bytes, spaced: bool, upper: bool
) -> None:
    from dlmsdoctor.codec.hexinput import _parse_line, _parse_line_slow

    text = data.hex(" ") if spaced else data.hex()
    text = text.upper() if upper else text
    sep = "" if not word or word.endswith(" ") else " "
    line = f"{ts}{word}{sep}{text}"
    assert _parse_line(line) == _parse_line_slow(line), line
