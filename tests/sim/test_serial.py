"""The meter on a serial line (a pseudo-terminal): alone, behind socat, behind a real ser2net."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.codec import hdlc
from dlmsdoctor.sim.meter import BRIDGE_BUSY_TEXT, MeterThread
from tests.helpers.ser2net import Ser2net, connected_peer, skip_without_ser2net, stop_process
from tests.sim.wire import snrm


def _read_frame(fd: int, timeout: float = 2.0) -> bytes:
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            buf += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.01)
        end = hdlc.frame_extent(buf, 0) if buf[:1] == b"\x7e" else None
        if end is not None:
            return bytes(buf[:end])
    raise TimeoutError(bytes(buf).hex(" "))


def test_meter_creates_a_pty_behind_the_given_path(tmp_path: Path) -> None:
    link = tmp_path / "meter"
    with MeterThread("default", port=None, serial_device=link) as meter:
        assert link.is_symlink() and meter.serial_path == str(link)
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            import tty

            tty.setraw(fd)
            os.write(fd, snrm())
            ua = _read_frame(fd)
            assert hdlc.parse_hdlc(ua, 0, "rx").fields["frame_type"] == "UA"
        finally:
            os.close(fd)
    assert not link.exists()  # the link goes with the meter


@pytest.fixture
def socat_pair(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (apt-get install socat; .ci/run installs it)")
    a, b = tmp_path / "pty-a", tmp_path / "pty-b"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield a, b
    finally:
        stop_process(proc)


def test_meter_on_one_end_of_a_socat_pty_pair(socat_pair: tuple[Path, Path]) -> None:
    meter_end, client_end = socat_pair
    with MeterThread("default", port=None, serial_device=meter_end):
        fd = os.open(client_end, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            os.write(fd, snrm())
            assert hdlc.parse_hdlc(_read_frame(fd), 0, "rx").fields["frame_type"] == "UA"
        finally:
            os.close(fd)


def test_behind_ser2net_a_second_client_gets_the_bridge_busy_text(tmp_path: Path) -> None:
    """A first TCP client reads the meter through a real ser2net; a second one gets ser2net's
    own 'Port already in use' and a close (not the simulator's bridge-busy fault)."""
    skip_without_ser2net()
    bridge = Ser2net(tmp_path, tmp_path / "meter")
    with MeterThread("default", port=None, serial_device=bridge.device) as meter:
        with bridge:
            port = bridge.port
            with connected_peer(port) as peer:
                ldn = GXDLMSData("0.0.42.0.0.255")
                peer.read(ldn, 2)
                assert bytes(ldn.value) == meter.profile.objects.logical_device_name.encode()
                with socket.create_connection(("127.0.0.1", port), timeout=3) as second:
                    got = b""
                    while chunk := second.recv(256):
                        got += chunk
                assert got == BRIDGE_BUSY_TEXT  # then the close ended the loop
                peer.release()
        assert meter.open_associations() == []
        assert [e["how"] for e in meter.log.of("association.released")] == ["rlrq"]


def test_a_close_fault_does_not_end_the_serial_line(tmp_path: Path) -> None:
    link = tmp_path / "meter"
    with MeterThread("default", ["cut-reply"], port=None, serial_device=link) as meter:
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            import tty

            tty.setraw(fd)
            for _ in range(2):  # each reply is cut; the line keeps being served
                os.write(fd, snrm())
                time.sleep(0.2)
                half = os.read(fd, 4096)
                assert half[:1] == b"\x7e" and hdlc.frame_extent(half, 0) is None
        finally:
            os.close(fd)
        assert [e["reason"] for e in meter.log.of("close.skipped")] == ["fault:cut-reply"] * 2
