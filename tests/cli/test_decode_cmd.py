"""`dlmsdoctor decode` in-process: exit codes, JSON document, pasted forms, no tracebacks."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.main import cli
from dlmsdoctor.codec.hdlc import ServerAddress, build_ua
from dlmsdoctor.codec.model import hexs

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


SEED_FILE = Path("/work/shared/seed/ESTADO_MEDIDOR_2.md")


@pytest.mark.skipif(not SEED_FILE.exists(), reason="the shared seed file is not here")
def test_seed_report_gives_exactly_its_one_tx_frame() -> None:
    code, out, _ = run("decode", "--json", "-f", str(SEED_FILE))
    assert code == ExitCode.FINDINGS
    doc = json.loads(out)
    assert [(f["direction"], f["type"], f["hex"]) for f in doc["frames"]] == [
        ("tx", "SNRM", SEED_SNRM)
    ]
