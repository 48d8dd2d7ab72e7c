"""Start-up stays fast and layers stay clean: checked in a fresh interpreter (harlequin's way)."""

from __future__ import annotations

import json
import subprocess
import sys

SNRM = "7E A0 07 03 21 93 0F 01 7E"


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in {"textual", "scapy", "gurux_dlms"}}


def test_decode_command_imports_no_textual_no_scapy_no_gurux_for_link_frames() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from dlmsdoctor.cli.main import cli\n"
        f"r = CliRunner().invoke(cli, ['decode', '{SNRM}'])\n"
        "assert r.exit_code == 0, r.output\n"
    )
    assert _heavy(_modules_after(code)) == set()


def test_codec_and_session_import_nothing_heavy() -> None:
    code = (
        "import dlmsdoctor.codec.model, dlmsdoctor.codec.crc, dlmsdoctor.session, dlmsdoctor.events"
    )
    assert _heavy(_modules_after(code)) == set()


def test_cli_help_is_light() -> None:
    code = (
        "from click.testing import CliRunner\n"
        "from dlmsdoctor.cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
    )
    assert _heavy(_modules_after(code)) == set()
