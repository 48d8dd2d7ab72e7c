"""`dlmsdoctor decode` in-process: exit codes, JSON document, pasted forms, no tracebacks."""

from __future__ import annotations

import itertools
import json
import random
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli.decode_cmd import AUTO_BRIEF
from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.main import cli
from dlmsdoctor.codec.decode import (
    Chunk,
    DecodeResult,
    InputProblem,
    decode_chunks,
    iter_decode,
)
from dlmsdoctor.codec.hdlc import ServerAddress, build_ua
from dlmsdoctor.codec.hexinput import parse_hex_input
from dlmsdoctor.codec.model import hexs
from dlmsdoctor.output.decode_json import decode_document

GOOD_SNRM = "7E A0 07 03 21 93 0F 01 7E"
# The SNRM from ../shared/seed/ESTADO_MEDIDOR_2.md: HCS/FCS right, parameter group length wrong.
SEED_SNRM = (
    "7E A0 21 02 03 21 93 73 56 81 80 12 05 02 00 80 06 02 00 80 07 04 00 00 00 01 "
    "08 04 00 00 00 01 A6 D9 7E"
)
SEED_SNRM_FIXED = (
    "7E A0 21 02 03 21 93 73 56 81 80 14 05 02 00 80 06 02 00 80 07 04 00 00 00 01 "
    "08 04 00 00 00 01 CE 6A 7E"
)


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def test_valid_frame_exits_zero_and_explains_fields() -> None:
    code, out, _ = run("decode", GOOD_SNRM)
    assert code == ExitCode.OK
    assert "SNRM" in out
    assert "all valid" in out


def test_seed_frame_is_flagged_with_the_corrected_frame() -> None:
    code, out, _ = run("decode", f"TX {SEED_SNRM}")
    assert code == ExitCode.FINDINGS
    assert "hdlc.params.group_length" in out
    assert SEED_SNRM_FIXED in out


def test_json_document_has_schema_frames_and_findings() -> None:
    code, out, _ = run("decode", "--json", f"TX {SEED_SNRM}")
    assert code == ExitCode.FINDINGS
    doc = json.loads(out)
    assert doc["schema"] == "dlmsdoctor.decode" and doc["version"] == 1
    (frame,) = doc["frames"]
    assert frame["direction"] == "tx"
    assert frame["kind"] == "hdlc" and frame["type"] == "SNRM"
    assert frame["valid"] is False
    (finding,) = [f for f in frame["findings"] if f["severity"] == "error"]
    assert finding["code"] == "hdlc.params.group_length"
    assert finding["offset"] == 11
    assert finding["corrected"] == "14"
    assert frame["corrected_hex"] == SEED_SNRM_FIXED
    assert frame["spans"][0]["name"].startswith("hdlc.")
    assert doc["summary"] == {
        "frames": 1,
        "valid": 0,
        "errors": 1,
        "warnings": frame_warnings(frame),
        "dlms_frames": 1,
        "other_chunks": 0,
        "garbage_chunks": 0,
    }


def frame_warnings(frame: dict[str, object]) -> int:
    findings = frame["findings"]
    assert isinstance(findings, list)
    return sum(1 for f in findings if f["severity"] == "warning")


@pytest.mark.parametrize(
    "pasted",
    [
        "7EA0070321930F017E",
        "0x7E 0xA0 0x07 0x03 0x21 0x93 0x0F 0x01 0x7E",
        r"b'\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e'",
        "[2025-10-30 14:51:48.452] TX: 7E A0 07 03 21 93 0F 01 7E",
        "Sent\t7E A0 07 03 21 93 0F 01 7E",
    ],
)
def test_pasted_forms(pasted: str) -> None:
    code, out, _ = run("decode", "--json", pasted)
    assert code == ExitCode.OK, out
    doc = json.loads(out)
    assert [f["type"] for f in doc["frames"]] == ["SNRM"]


def test_stdin_and_several_frames() -> None:
    log = f"TX {GOOD_SNRM}\nRX 7E A0 07 21 03 73 01 40 7E\n"
    code, out, _ = run("decode", "--json", stdin=log)
    doc = json.loads(out)
    assert [(f["direction"], f["kind"]) for f in doc["frames"]] == [("tx", "hdlc"), ("rx", "hdlc")]
    assert code in (ExitCode.OK, ExitCode.FINDINGS)


def test_unusable_input_exits_2_with_message_on_stderr_and_nothing_on_stdout() -> None:
    code, out, err = run("decode", "hello world")
    assert code == ExitCode.UNUSABLE_INPUT
    assert out == ""
    assert "no hex bytes" in err


def test_garbage_bytes_are_reported_not_raised() -> None:
    code, out, _ = run("decode", "--json", "7E A0 FF 00 13 37 7E 7E 00")
    doc = json.loads(out)
    assert code == ExitCode.FINDINGS
    assert doc["frames"], "something must be reported"


def test_bridge_busy_text_is_recognised() -> None:
    busy = "RX " + b"Port already in use\r\n".hex(" ")
    _code, out, _ = run("decode", "--json", busy)
    doc = json.loads(out)
    assert doc["frames"][0]["kind"] == "bridge-message"
    codes = [f["code"] for f in doc["frames"][0]["findings"]]
    assert "stream.bridge.busy" in codes


DOC = Path(__file__).parents[2] / "docs" / "decode.md"


def doc_examples() -> list[list[str]]:
    """Every `dlmsdoctor decode HEX` command in docs/decode.md's sh blocks (not -f/stdin ones)."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    out = []
    for line in "\n".join(blocks).splitlines():
        if not line.startswith("dlmsdoctor decode ") or "|" in line:
            continue
        args = shlex.split(line.split("  #")[0], comments=False)[2:]
        if "-f" not in args:
            out.append(args)
    return out


def test_doc_has_examples_to_check() -> None:
    assert len(doc_examples()) >= 2


@pytest.mark.parametrize("args", doc_examples(), ids=" ".join)
def test_every_doc_example_decodes_valid(args: list[str]) -> None:
    code, out, err = run("decode", "--json", *args)
    assert code == ExitCode.OK, (out, err)
    doc = json.loads(out)
    assert doc["frames"] and all(f["valid"] for f in doc["frames"])


def test_ua_in_doc_is_what_build_ua_builds() -> None:
    ua = build_ua(ServerAddress(1), 16)
    assert f"RX: {hexs(ua)}" in DOC.read_text(encoding="utf-8")


def test_finding_line_gives_the_hex_offset_and_the_field_label_not_the_code_twice() -> None:
    _code, out, _ = run("decode", f"TX {SEED_SNRM}")
    (line,) = [ln for ln in out.splitlines() if "hdlc.params.group_length" in ln]
    assert "at 000B (Group length):" in line
    assert line.count("hdlc.params.group_length") == 1
    assert "offset 11" not in line
    # the table shows the same offset for that field
    assert any(ln.lstrip().startswith("000B") and "Group length" in ln for ln in out.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["-> 7E A0 07 03 21 93 0F 01 7E"],
        ["->", "7E", "A0", "07", "03", "21", "93", "0F", "01", "7E"],
        ["--> 7e a0 07 03 21 93 0f 01 7e"],  # lower-case "0f": no "-f" hides in it
        ["--json", "-> 7E A0 07 03 21 93 0F 01 7E"],
        ["-> 7E A0 07 03 21 93 0F 01 7E", "--json", "--direction", "tx"],
    ],
)
def test_arguments_starting_with_a_dash_are_input(args: list[str]) -> None:
    code, out, err = run("decode", "--json", *args)
    assert code == ExitCode.OK, (out, err)
    (frame,) = json.loads(out)["frames"]
    assert (frame["type"], frame["direction"]) == ("SNRM", "tx")


def test_options_still_work_around_arrow_input(tmp_path: Path) -> None:
    log = tmp_path / "poller.log"
    log.write_text("<- 7E A0 07 21 03 73 01 40 7E\n", encoding="utf-8")
    code, out, _ = run("decode", "-f", str(log), "--json")
    assert code == ExitCode.OK
    assert json.loads(out)["frames"][0]["direction"] == "rx"
    code, out, _ = run("decode", "--direction=rx", "--json", "7E A0 07 21 03 73 01 40 7E")
    assert json.loads(out)["frames"][0]["direction"] == "rx"
    code, _, err = run("decode", "--no-such-option-but-hex")
    assert code == ExitCode.UNUSABLE_INPUT and "no hex" in err


# The field report itself (a copy of ../shared/seed/ESTADO_MEDIDOR_2.md, tests/vectors/README.md):
# shipped with the tests, so that a clean checkout runs this test instead of skipping it.
SEED_FILE = Path(__file__).resolve().parents[1] / "vectors" / "seed_estado_medidor_2.md"


def test_seed_report_gives_exactly_its_one_tx_frame() -> None:
    code, out, _ = run("decode", "--json", "-f", str(SEED_FILE))
    assert code == ExitCode.FINDINGS
    doc = json.loads(out)
    assert [(f["direction"], f["type"], f["hex"]) for f in doc["frames"]] == [
        ("tx", "SNRM", SEED_SNRM)
    ]


# --- binary input, text and garbage chunks -------------------------------------------------


def run_bytes(*args: str, stdin: bytes) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


NOISE = random.Random(2).randbytes(5000)  # what `head -c 5000 /dev/urandom` gives


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_binary_stdin_is_refused_with_exit_2(as_json: list[str]) -> None:
    code, out, err = run_bytes("decode", *as_json, stdin=NOISE)
    assert code == ExitCode.UNUSABLE_INPUT
    assert out == ""
    assert "binary, not hex text" in err and "--raw" in err


def test_binary_file_is_refused_and_raw_decodes_it_as_a_stream(tmp_path: Path) -> None:
    dump = tmp_path / "sniffer.bin"
    dump.write_bytes(b"\x00\x13\x37" + bytes.fromhex(GOOD_SNRM) + b"\x00\x00")
    code, out, err = run("decode", "-f", str(dump))
    assert code == ExitCode.UNUSABLE_INPUT and out == "" and "NUL" in err
    code, out, _ = run("decode", "--raw", "--json", "-f", str(dump))
    doc = json.loads(out)
    assert [f["type"] for f in doc["frames"] if f["dlms"]] == ["SNRM"]
    assert doc["summary"]["dlms_frames"] == 1 and doc["summary"]["other_chunks"] >= 1
    assert code == ExitCode.FINDINGS  # the garbage around the frame


def test_raw_needs_a_file_or_stdin() -> None:
    code, _, err = run("decode", "--raw", GOOD_SNRM)
    assert code == ExitCode.UNUSABLE_INPUT and "--raw" in err


def test_garbage_only_is_never_a_valid_frame() -> None:
    code, out, _ = run("decode", "01 02 03 04 05 06")
    assert code == ExitCode.FINDINGS
    assert "✓ valid" not in out and "all valid" not in out
    assert "0 DLMS frame(s), 1 other chunk(s) (text/garbage), 1 garbage." in out
    code, out, _ = run("decode", "--json", "01 02 03 04 05 06")
    doc = json.loads(out)
    assert doc["summary"]["valid"] == 0 and doc["summary"]["garbage_chunks"] == 1
    assert doc["frames"][0]["dlms"] is False and doc["frames"][0]["valid"] is False


def test_frames_and_other_chunks_are_counted_apart() -> None:
    log = f"TX {GOOD_SNRM}\nRX {b'hello meter'.hex(' ')}\n"
    code, out, _ = run("decode", stdin=log)
    assert "1 DLMS frame(s), 1 other chunk(s) (text/garbage); the DLMS frames" in out
    assert "all valid." in out and "1 DLMS frame(s), all valid" not in out
    assert code == ExitCode.OK  # text is a warning; only garbage or an error fails


# --- large inputs: streamed ----------------------------------------------------------------


def big_log(frames: int) -> str:
    pair = [f"TX: {SEED_SNRM}", "RX: 7E A0 07 21 03 73 01 40 7E"]
    return "".join(
        f"[2025-10-30 14:51:{i % 60:02d}.{i % 1000:03d}] {pair[i % 2]}\n" for i in range(frames)
    )


def test_large_input_gets_the_brief_view_with_a_note_and_full_on_request() -> None:
    log = big_log(AUTO_BRIEF + 1)
    code, out, err = run("decode", stdin=log)
    assert code == ExitCode.FINDINGS
    assert f"more than {AUTO_BRIEF} frames" in err and "--full" in err
    heads = [ln for ln in out.splitlines() if ln.startswith("Frame ")]
    assert len(heads) == AUTO_BRIEF + 1
    assert "Opening flag" not in out  # no field tables
    assert out.count("hdlc.params.group_length at 000B (Group length)") == (AUTO_BRIEF + 2) // 2
    assert f"{AUTO_BRIEF + 1} DLMS frame(s), {(AUTO_BRIEF + 2) // 2} with errors." in out
    code, out, err = run("decode", "--full", stdin=log)
    assert err == "" and out.count("Opening flag") == AUTO_BRIEF + 1
    _code, out, err = run("decode", stdin=big_log(AUTO_BRIEF))
    assert err == "" and out.count("Opening flag") == AUTO_BRIEF
    _code, out, _ = run("decode", "--brief", GOOD_SNRM)
    assert "Opening flag" not in out and "SNRM" in out


def test_streamed_json_is_the_documented_document() -> None:
    log = big_log(7) + "RX: 01 02 03 04 05 06\nTX 7E A0 07 03 21 93 0F 01 7G\n"
    code, out, _ = run("decode", "--json", stdin=log)
    assert code == ExitCode.FINDINGS
    doc = json.loads(out)
    parsed = parse_hex_input(log)
    whole = decode_document(
        DecodeResult(
            chunks=tuple(Chunk(c.data, c.direction) for c in parsed.chunks),
            frames=decode_chunks([Chunk(c.data, c.direction) for c in parsed.chunks]).frames,
            problems=tuple(InputProblem(p.line, p.message, p.source) for p in parsed.problems),
        )
    )
    assert doc == whole
    assert list(doc) == ["schema", "version", "tool_version", "frames", "input", "summary"]
    assert doc["input"]["problems"][0]["line"] == 9
    assert doc["summary"]["frames"] == 8 and doc["summary"]["dlms_frames"] == 7


def test_iter_decode_streams_an_endless_input() -> None:
    consumed = 0

    def endless() -> Iterator[Chunk]:
        nonlocal consumed
        for data in itertools.cycle([bytes.fromhex(GOOD_SNRM), bytes.fromhex(SEED_SNRM)]):
            consumed += 1
            yield Chunk(data, "tx")

    frames = list(itertools.islice(iter_decode(endless()), 500))
    assert [fd.index for fd in frames] == list(range(500))
    assert consumed <= 501
    assert [fd.valid for fd in frames[:2]] == [True, False]
