"""TcpChannel on real loopback sockets: timing, FIN vs RST, refused, unsolicited bytes, close."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct

import pytest

from dlmsdoctor.events import CloseHow
from dlmsdoctor.link.channel import ConnectError
from dlmsdoctor.link.clock import MonotonicClock
from dlmsdoctor.link.tcp import TcpChannel, _classify


async def _server(handler):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_echo_timestamps_and_local_close() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(data[::-1])
        await writer.drain()
        await reader.read(100)  # wait for our FIN
        writer.close()

    server, port = await _server(echo)
    async with server:
        clock = MonotonicClock()
        async with await TcpChannel.open("127.0.0.1", port, 2.0, 7, clock) as ch:
            assert ch.conn_id == 7 and 0 <= ch.connect_time < 1.0 and ch.local_port > 0
            sent_at = await ch.send(b"\x01\x02\x03")
            chunk = await ch.receive(2.0)
            assert chunk is not None and chunk.data == b"\x03\x02\x01"
            assert chunk.at >= sent_at
        assert ch.closed is not None and ch.closed.how is CloseHow.LOCAL
        assert not ch.closed.by_peer


async def test_peer_fin_is_told_from_rst() -> None:
    async def fin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def rst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        sock = writer.get_extra_info("socket")
        # SO_LINGER 0: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    for handler, how in ((fin, CloseHow.FIN), (rst, CloseHow.RST)):
        server, port = await _server(handler)
        async with server:
            ch = await TcpChannel.open("127.0.0.1", port, 2.0)
            await ch.send(b"x")
            assert await ch.receive(2.0) is None
            assert ch.closed is not None and ch.closed.by_peer and ch.closed.how is how
            await ch.close()


async def test_silence_returns_none_and_keeps_open() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)

    server, port = await _server(silent)
    async with server, await TcpChannel.open("127.0.0.1", port, 2.0) as ch:
        assert await ch.receive(0.05) is None
        assert ch.closed is None


async def test_unsolicited_banner_is_read_before_sending() -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Port already in use\r\n")
        await writer.drain()
        writer.close()

    server, port = await _server(banner)
    async with server, await TcpChannel.open("127.0.0.1", port, 2.0) as ch:
        chunk = await ch.receive(1.0)
        assert chunk is not None and chunk.data.startswith(b"Port already in use")
        assert await ch.receive(1.0) is None
        assert ch.closed is not None and ch.closed.how is CloseHow.FIN


async def test_refused_is_classified() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(ConnectError) as info:
        await TcpChannel.open("127.0.0.1", port, 2.0)
    assert info.value.reason == "refused"


def test_errno_classification() -> None:
    assert _classify(OSError(errno.EHOSTUNREACH, "No route to host")) == "unreachable"
    assert _classify(OSError(errno.ENETUNREACH, "Network is unreachable")) == "unreachable"
    assert _classify(OSError(errno.ETIMEDOUT, "timed out")) == "timeout"
    assert _classify(OSError(None, "Multiple exceptions: [Errno 111] Connect call failed ('::1', "
                                   "1) refused")) == "refused"
    assert _classify(OSError(errno.EACCES, "denied")) == "error"


async def test_send_after_peer_reset_does_not_raise() -> None:
    async def rst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server, port = await _server(rst)
    async with server:
        ch = await TcpChannel.open("127.0.0.1", port, 2.0)
        await asyncio.sleep(0.05)
        for _ in range(3):
            await ch.send(b"x" * 1000)
        await ch.receive(0.5)
        assert ch.closed is not None and ch.closed.by_peer
        await ch.close()


async def test_ipv6_loopback_when_available() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        server = await asyncio.start_server(lambda r, w: w.close(), "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = server.sockets[0].getsockname()[1]
    async with server, await TcpChannel.open("::1", port, 2.0) as ch:
        assert ch.local_host == "::1"
        assert await ch.receive(1.0) is None and ch.closed is not None
