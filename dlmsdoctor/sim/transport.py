"""Byte streams the meter serves: a TCP connection, or a serial device (a pseudo-terminal).

A serial device path that does not exist yet is created as a symlink to the slave side of a
new pty, so that a bridge (ser2net) can be pointed at it; an existing path is opened as is
(e.g. one end of a socat pty pair, or a real port).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from typing import Protocol


class ByteStream(Protocol):
    async def read(self, size: int) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class TcpStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self, size: int) -> bytes:
        return await self.reader.read(size)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        if self.writer.is_closing():
            return
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


class PtyStream:
    """The meter's side of a serial line: non-blocking reads and writes on a tty fd."""

    def __init__(self, fd: int, path: str, keep_fds: tuple[int, ...] = (),
                 link: str | None = None) -> None:
        self.fd = fd
        self.path = path
        self._keep = keep_fds  # the slave fd we hold so reads never see EIO when the peer closes
        self._link = link
        os.set_blocking(fd, False)
        self._closed = False

    async def read(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = os.read(self.fd, size)
            except BlockingIOError:
                data = None
            except OSError:  # EIO: no slave open; poll until one opens (the fd stays readable)
                await asyncio.sleep(0.05)
                continue
            if data:
                return data
            await _readable(loop, self.fd)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self.fd, view)
                view = view[sent:]
            except BlockingIOError:
                await asyncio.sleep(0.005)

    async def close(self) -> None:
        # A serial line is not closed per session; ``dispose`` ends it with the meter.
        return None

    def dispose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self.fd, *self._keep):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._link:
            with contextlib.suppress(OSError):
                os.unlink(self._link)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _raw(fd: int) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def open_serial(path: str, keep_slave: bool = True) -> PtyStream:
    """Open ``path`` as the meter's serial line; create a pty behind it if it does not exist.
    ``"pty"`` makes a pty without a link (read ``.path`` for the slave's name). Without
    ``keep_slave`` the meter holds only the master, so a client that checks who has the slave
    open (dlmsdoctor does) finds nobody."""
    if path != "pty" and os.path.exists(path):
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        with contextlib.suppress(termios.error):
            _raw(fd)
        return PtyStream(fd, path)
    master, slave = os.openpty()
    _raw(slave)
    slave_name = os.ttyname(slave)
    link = None
    if path != "pty":
        os.symlink(slave_name, path)
        link = path
    if not keep_slave:
        os.close(slave)
    return PtyStream(master, path if link else slave_name,
                     keep_fds=(slave,) if keep_slave else (), link=link)
