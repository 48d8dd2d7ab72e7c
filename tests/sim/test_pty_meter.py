"""``dlmsdoctor simulate --pty``: a pseudo-terminal whose meter reads the client's rate from the
shared termios, takes bytes' time on the wire, and answers an optical sign-on."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from click.testing import CliRunner

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.simulate_cmd import simulate
from dlmsdoctor.codec import hdlc
from dlmsdoctor.sim.faults import FaultError, parse_faults
from dlmsdoctor.sim.meter import MeterThread
from dlmsdoctor.sim.optical import LineSettings, parity_garbled
from tests.sim.wire import snrm

RUN = [sys.executable, "-c", "from dlmsdoctor.cli.simulate_cmd import simulate; simulate()"]


def _read_frame(port: serial.Serial, timeout: float = 2.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buf += port.read(256)
        if buf[:1] == b"\x7e" and hdlc.frame_extent(buf, 0) is not None:
            return buf
    return buf


def test_simulate_pty_prints_the_path_and_a_probe_reads_it(tmp_path: Path) -> None:
    proc = subprocess.Popen([*RUN, "--pty", "--line-rate", "19200"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the meter's banner
        second = proc.stdout.readline()
        match = re.match(r"pty: (/dev/pts/\d+) \(serial line at 19200 8N1\); try: "
                         r"dlmsdoctor probe (/dev/pts/\d+)\n", second)
        assert match and match.group(1) == match.group(2), second
        path = match.group(1)
        # the simulator does not hold the slave: a client sees nobody else on the line
        from dlmsdoctor.link.serial_line import holders

        assert holders(path) == []
        with serial.Serial(path, 9600, timeout=0.05) as wrong:
            wrong.write(snrm())
            assert _read_frame(wrong, 0.5) == b""  # noise to a meter at 19200
        with serial.Serial(path, 19200, timeout=0.05) as right:
            right.write(snrm())
            assert hdlc.parse_hdlc(_read_frame(right), 0, "rx").fields["frame_type"] == "UA"
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_optical_pty_answers_the_sign_on_at_300_only() -> None:
    with MeterThread("default", port=None, serial_device="pty",
                     line=LineSettings(optical=True)) as meter:
        path = meter.serial_path
        assert path is not None
        with serial.Serial(path, 9600, timeout=0.05) as fast:
            fast.write(b"/?!\r\n")
            time.sleep(0.4)
            assert fast.read(64) == b""  # the optical port listens at 300 only
        with serial.Serial(path, 300, timeout=0.05) as head:
            start = time.monotonic()
            head.write(b"/?!\r\n")
            got = b""
            while not got.endswith(b"\r\n") and time.monotonic() - start < 3:
                got += head.read(64)
            # request (5 bytes) and answer (18 bytes) at 300 baud, plus the reaction time
            assert time.monotonic() - start >= (5 + 18) / 30 + 0.2
        assert got == b"/DLD5\\2SIM-METER\r\n"
        assert [e["event"] for e in meter.log.events if e["event"].startswith("bytes.garbled")]


def test_parity_mismatch_turns_even_parity_bytes_into_framing_errors() -> None:
    # 0x7E has six 1 bits: an 8E1 sender's parity bit is 0 where 8N1 expects the stop bit
    assert parity_garbled(bytes([0x7E, 0x01, 0x03, 0xA0])) == bytes([0x00, 0x01, 0x00, 0x00])


def test_line_faults_parse_and_refuse_nonsense() -> None:
    faults = parse_faults(["line-rate=19200", "line-format=8e1", "no-mode-e", "optical-silent",
                           "mode-e-rate=4800"])
    assert (faults.line_rate, faults.line_format, faults.mode_e_rate) == (19200, "8E1", 4800)
    assert faults.no_mode_e and faults.optical_silent
    with pytest.raises(FaultError, match="needs a rate in baud"):
        parse_faults(["line-rate=fast"])
    with pytest.raises(FaultError, match="DATA PARITY STOP"):
        parse_faults(["line-format=9Q9"])


def test_optical_without_pty_is_a_usage_error() -> None:
    result = CliRunner().invoke(simulate, ["--optical"])
    assert result.exit_code == ExitCode.USAGE and "--optical needs --pty" in result.output
