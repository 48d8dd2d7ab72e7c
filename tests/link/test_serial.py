"""The serial channel and its checks: line formats, who holds a device, lock files, permission,
bytes both ways over a pty with run-clock stamps, a vanished device, the CLI's target forms."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlmsdoctor.events import CloseHow
from dlmsdoctor.link import serial as link_serial
from dlmsdoctor.link.clock import FakeClock, MonotonicClock
from dlmsdoctor.link.serial import LineOpenError, open_line
from dlmsdoctor.link.serial_line import (
    LineFormat,
    LineFormatError,
    byte_time,
    device_group,
    holders,
    is_pty,
    lock_holder,
    parse_baud,
)


def test_line_formats_as_people_write_them() -> None:
    assert str(LineFormat.parse("8N1")) == "8N1"
    assert LineFormat.parse("7e1") == LineFormat(7, "E", 1.0)
    assert LineFormat.parse("8O2").ser2net(19200) == "19200o82"
    assert LineFormat.parse("8N1").bits_per_char == LineFormat.parse("7E1").bits_per_char == 10
    with pytest.raises(LineFormatError, match=r"e\.g\. 8N1"):
        LineFormat.parse("9X1")
    # the sign-on at 300 baud costs real time: 5 bytes = 1/6 s
    assert byte_time(5, 300, LineFormat.parse("7E1")) == pytest.approx(5 / 30)
    assert parse_baud("auto") is None and parse_baud("19200") == 19200
    with pytest.raises(ValueError, match="give auto or a rate"):
        parse_baud("fast")


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    yield master, name
    os.close(master)


def _hold(path: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import os, sys, time; os.open(sys.argv[1], os.O_RDWR | "
         "os.O_NOCTTY); print('ready', flush=True); time.sleep(30)", path],
        stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_holders_are_found_by_their_open_file(pty: tuple[int, str]) -> None:
    _, name = pty
    assert holders(name) == [] and is_pty(name)
    proc = _hold(name)
    try:
        found = holders(name)
        assert [h.pid for h in found] == [proc.pid]
        assert "time.sleep(30)" in found[0].command and str(found[0]).startswith("PID ")
    finally:
        proc.kill()
        proc.wait()


def test_a_live_lock_file_is_respected_and_a_stale_one_ignored(tmp_path: Path,
                                                               pty: tuple[int, str]) -> None:
    _, name = pty
    lock = tmp_path / f"LCK..{Path(name).name}"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock.write_text(f"{proc.pid:10d}\n")  # the FHS/UUCP form: ten characters and LF
        holder = lock_holder(name, (tmp_path,))
        assert holder is not None and holder.pid == proc.pid and str(lock) in holder.how
        with pytest.raises(LineOpenError) as caught:
            asyncio.run(open_line(name, 9600, LineFormat.parse("8N1"), link="serial",
                                  conn_id=1, clock=FakeClock(), lock_dirs=(tmp_path,)))
        assert caught.value.reason == "locked" and caught.value.holders[0].pid == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert lock_holder(name, (tmp_path,)) is None  # the process is gone: a stale lock


def test_permission_denied_names_the_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    import serial

    device = tmp_path / "ttyUSB0"
    device.write_bytes(b"")
    os.chown(device, -1, 20)  # gid 20: dialout on Debian
    group = device_group(str(device))

    def refuse(*_: object) -> None:
        raise serial.SerialException(errno.EACCES, f"could not open port {device}: "
                                     "[Errno 13] Permission denied")

    monkeypatch.setattr(link_serial, "_open_local", refuse)
    with pytest.raises(LineOpenError) as caught:
        asyncio.run(open_line(str(device), 9600, LineFormat.parse("8N1"), link="serial",
                              conn_id=1, clock=FakeClock(), lock_dirs=()))
    assert caught.value.reason == "permission" and caught.value.group == group
    assert f"group {group!r}" in caught.value.message


def test_a_missing_device_is_no_device() -> None:
    with pytest.raises(LineOpenError) as caught:
        asyncio.run(open_line("/dev/ttyDLMSDOCTOR-NONE", 9600, LineFormat.parse("8N1"),
                              link="serial", conn_id=1, clock=FakeClock(), lock_dirs=()))
    assert caught.value.reason == "no-device"


async def test_bytes_both_ways_stamped_on_the_run_clock(pty: tuple[int, str]) -> None:
    master, name = pty
    clock = MonotonicClock()
    channel = await open_line(name, 19200, LineFormat.parse("8N1"), link="serial", conn_id=3,
                              clock=clock, lock_dirs=())
    assert (channel.link, channel.host, channel.port, channel.conn_id) == ("serial", name, 0, 3)
    assert termios.tcgetattr(master)[5] == termios.B19200  # the meter side sees the rate
    sent_at = await channel.send(b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e")
    assert os.read(master, 64) == b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e"
    assert await channel.receive(0.05) is None  # silence is None, not an error
    before = clock.now()
    os.write(master, b"\x7e\xa0")
    chunk = await channel.receive(1.0)
    assert chunk is not None and chunk.data == b"\x7e\xa0" and before <= chunk.at <= clock.now()
    assert sent_at <= chunk.at
    note = await channel.set_line(300, LineFormat.parse("7E1"))
    assert "pseudo-terminal cannot carry 7E1" in note  # a pty forces 8N1: said, not hidden
    assert termios.tcgetattr(master)[5] == termios.B300
    info = await channel.close()
    assert info.how is CloseHow.LOCAL and not info.by_peer


async def test_a_vanished_device_ends_the_channel() -> None:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    channel = await open_line(name, 9600, LineFormat.parse("8N1"), link="serial", conn_id=1,
                              clock=MonotonicClock(), lock_dirs=())
    os.close(master)  # the other side is gone: a hang-up (an unplugged adapter reads EIO)
    assert await channel.receive(1.0) is None
    await asyncio.sleep(0)
    assert channel.closed is not None and channel.closed.by_peer
    assert channel.closed.how is CloseHow.RST
    assert channel.closed.note in ("the device hung up", "the device went away: Input/output "
                                   "error")
    await channel.close()


def test_targets_are_classified_as_users_type_them() -> None:
    from dlmsdoctor.cli.targets import link_of, options_for
    from dlmsdoctor.engine import OptionsError

    assert link_of("/dev/ttyUSB0") == link_of("COM3") == link_of("serial:ttyS1") == "serial"
    assert link_of("rfc2217://127.0.0.1:7000") == "rfc2217"
    assert link_of("10.0.0.5:4059") == link_of("meter-7") == "tcp"
    opts = options_for("/dev/ttyUSB0", baud="19200", serial_format="8e1")
    assert (opts.link, opts.host, opts.baud, opts.serial_format) == (
        "serial", "/dev/ttyUSB0", "19200", "8E1")
    assert options_for("/dev/ttyUSB0", optical=True).link == "optical"
    with pytest.raises(OptionsError, match="apply to serial targets"):
        options_for("10.0.0.5", baud="9600")
    with pytest.raises(OptionsError, match="rfc2217://HOST:PORT"):
        options_for("rfc2217://nohost")
    with pytest.raises(OptionsError, match="leave --serial-format out"):
        options_for("/dev/ttyUSB0", optical=True, serial_format="8N1")


async def test_an_exclusive_lock_keeps_a_second_opener_out(pty: tuple[int, str]) -> None:
    """pyserial's exclusive=True (an flock): a second dlmsdoctor, or any flock-respecting
    program, cannot open the line while the first holds it (the /proc scan cannot see our own
    process, so this exercises the lock itself)."""
    _, name = pty
    first = await open_line(name, 9600, LineFormat.parse("8N1"), link="serial", conn_id=1,
                            clock=MonotonicClock(), lock_dirs=())
    try:
        with pytest.raises(LineOpenError) as caught:
            await open_line(name, 9600, LineFormat.parse("8N1"), link="serial", conn_id=2,
                            clock=MonotonicClock(), lock_dirs=())
        assert caught.value.reason == "held" and "exclusive use" in caught.value.message
    finally:
        await first.close()
    second = await open_line(name, 9600, LineFormat.parse("8N1"), link="serial", conn_id=3,
                             clock=MonotonicClock(), lock_dirs=())
    await second.close()


def test_serial_names_resolve_under_dev(pty: tuple[int, str]) -> None:
    from dlmsdoctor.link.serial import device_name

    _, name = pty
    assert device_name("serial:" + name.removeprefix("/dev/")) == name
    assert device_name("serial:" + name) == name
    assert device_name("COM3") == "COM3" and device_name("/dev/ttyUSB0") == "/dev/ttyUSB0"


async def test_the_line_is_in_exclusive_mode_while_held(pty: tuple[int, str]) -> None:
    """TIOCEXCL while open (a later opener without CAP_SYS_ADMIN gets EBUSY), off again after
    close. Read with TIOCGEXCL (Linux 3.8+), which Python's termios does not name."""
    import fcntl
    import struct

    tiocgexcl = 0x80045440
    _, name = pty

    def exclusive() -> int:
        # the flag is the slave's: look through another descriptor of it (root may open it
        # even in exclusive mode; another user's poller could not)
        fd = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            return int(struct.unpack("i", fcntl.ioctl(fd, tiocgexcl, b"\0\0\0\0"))[0])
        finally:
            os.close(fd)

    try:
        exclusive()
    except OSError:
        pytest.skip("this kernel has no TIOCGEXCL")
    channel = await open_line(name, 9600, LineFormat.parse("8N1"), link="serial", conn_id=1,
                              clock=MonotonicClock(), lock_dirs=())
    assert exclusive() == 1
    await channel.close()
    assert exclusive() == 0


def test_processes_that_cannot_be_looked_into_are_counted(tmp_path: Path) -> None:
    """Without root another user's /proc/PID/fd cannot be listed: the scan says how many it
    could not check (a fake /proc: one readable holder, one unreadable, one gone)."""
    from dlmsdoctor.link.serial_line import scan_holders

    proc = tmp_path / "proc"
    (proc / "100" / "fd").mkdir(parents=True)
    (proc / "100" / "fd" / "3").symlink_to("/dev/ttyUSB0")
    (proc / "100" / "cmdline").write_bytes(b"poller\x00--serial\x00/dev/ttyUSB0\x00")
    (proc / "200").mkdir()
    (proc / "200" / "fd").write_text("not a directory: listing it fails like EACCES")
    found, unreadable = scan_holders("/dev/ttyUSB0", proc, exclude=1)
    assert [(h.pid, h.command) for h in found] == [(100, "poller --serial /dev/ttyUSB0")]
    assert unreadable == 1
