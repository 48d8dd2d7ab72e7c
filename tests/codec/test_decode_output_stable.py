"""`dlmsdoctor decode` prints the same bytes as before the decoder was made faster.

tests/vectors/decode_output_golden.json holds the SHA-256 of what `decode` printed (stdout,
stderr, exit code), as merged before the speed work of issue 14, for: every hex of the vector files
(view, --json, --brief, --json --show-secrets), every input of hexinput_lines.txt, a poller log of
600 frames (tests/vectors/poll_mix.log: SNRM/UA/AARQ/AARE/GET/DISC as bench/decode.py writes it),
the real frames as a log, and all vectors back to back as one raw stream (--raw). Any change to
the output shows here; when a change is meant, rewrite the golden with

    DLMSDOCTOR_WRITE_GOLDEN=1 .venv/bin/python -m pytest -q tests/codec/test_decode_output_stable.py

(and DLMSDOCTOR_GOLDEN_DUMP=DIR writes every output to DIR, to diff before and after).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli.main import cli

VECTORS = Path(__file__).parent.parent / "vectors"
GOLDEN = VECTORS / "decode_output_golden.json"


def _hexes(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "hex" and isinstance(value, str):
                yield value
            else:
                yield from _hexes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _hexes(value)


def _vector_hexes() -> list[tuple[str, str]]:
    out = []
    for path in sorted(VECTORS.glob("*.json")):
        if path == GOLDEN:
            continue
        for i, text in enumerate(_hexes(json.loads(path.read_text()))):
            out.append((f"{path.stem}[{i}]", text))
    return out


def _hexinput_cases() -> list[tuple[str, str]]:
    out = []
    name = ""
    lines: list[str] = []
    mode = ""
    for line in (VECTORS / "hexinput_lines.txt").read_text().splitlines():
        if line.startswith("=== "):
            if name:
                out.append((name, "\n".join(lines)))
            name, lines, mode = line[4:], [], ""
        elif line in ("--- input", "--- expect"):
            mode = line[4:]
        elif mode == "input":
            lines.append(line)
    if name:
        out.append((name, "\n".join(lines)))
    return out


def _cases() -> list[tuple[str, list[str], str | bytes | None]]:
    cases: list[tuple[str, list[str], str | bytes | None]] = []
    for name, text in _vector_hexes():
        cases.append((f"{name} view", ["decode", text], None))
        cases.append((f"{name} json", ["decode", "--json", text], None))
        cases.append((f"{name} brief", ["decode", "--brief", text], None))
        cases.append((f"{name} json secrets", ["decode", "--json", "--show-secrets", text], None))
    for name, text in _hexinput_cases():
        cases.append((f"hexinput {name} view", ["decode", "-"], text))
        cases.append((f"hexinput {name} json", ["decode", "-", "--json"], text))
    poll = (VECTORS / "poll_mix.log").read_text()
    cases.append(("poll_mix view", ["decode", "-"], poll))
    cases.append(("poll_mix json", ["decode", "-", "--json"], poll))
    cases.append(("poll_mix full", ["decode", "-", "--full"], poll))
    cases.append(("poll_mix full json", ["decode", "-", "--full", "--json"], poll))
    real_vectors = json.loads((VECTORS / "real_frames.json").read_text())["frames"]
    real = [bytes.fromhex(v["hex"]) for v in real_vectors]
    real_log = "".join(f"RX: {frame.hex(' ')}\n" for frame in real * 3)
    cases.append(("real view", ["decode", "-"], real_log))
    cases.append(("real json", ["decode", "-", "--json"], real_log))
    long_real = "".join(f"RX: {frame.hex(' ')}\n" for frame in real * 41)  # > 200: brief
    cases.append(("real long view", ["decode", "-"], long_real))
    cases.append(("real long json", ["decode", "-", "--json"], long_real))
    stream = b"".join(bytes.fromhex(text.replace("0x", "")) for _, text in _vector_hexes()
                      if _is_hex(text))  # fmt: skip
    cases.append(("raw stream view", ["decode", "--raw", "-"], stream))
    cases.append(("raw stream json", ["decode", "--raw", "--json", "-"], stream))
    cases.append(("raw stream full json", ["decode", "--raw", "--full", "--json", "-"], stream))
    return cases


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text.replace("0x", ""))
    except ValueError:
        return False
    return True


def _run(args: list[str], stdin: str | bytes | None) -> bytes:
    result = CliRunner().invoke(cli, args, input=stdin, env={"NO_COLOR": "1", "COLUMNS": "100"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    out = b"%d\n" % result.exit_code + result.stdout_bytes
    return out + b"\n--stderr--\n" + result.stderr_bytes


def test_decode_output_is_byte_identical_to_the_golden() -> None:
    dump = os.environ.get("DLMSDOCTOR_GOLDEN_DUMP")
    digests: dict[str, str] = {}
    for name, args, stdin in _cases():
        assert name not in digests, name
        out = _run(args, stdin)
        digests[name] = hashlib.sha256(out).hexdigest()
        if dump:
            Path(dump).mkdir(parents=True, exist_ok=True)
            (Path(dump) / (name.replace("/", "_") + ".out")).write_bytes(out)
    if os.environ.get("DLMSDOCTOR_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden written")
    golden = json.loads(GOLDEN.read_text())
    changed = sorted(name for name in golden if digests.get(name) != golden[name])
    assert not changed, f"{len(changed)} output(s) changed, e.g. {changed[:5]}"
    assert sorted(digests) == sorted(golden)
