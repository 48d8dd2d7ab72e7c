"""Bounded resources (issue 10 item 6 and 5): a flooding peer is summarised, not stored; the
stream splitter holds at most about one frame's worth of undecided bytes; the facts the rules
ask for stay linear in the number of frames."""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.stream import MAX_GAP, WRAPPER_HEADER, StreamSplitter
from dlmsdoctor.codec.wrapper import build_wrapper
from dlmsdoctor.diagnosis import diagnose
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import Direction
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.probes import wire
from dlmsdoctor.session import ConnectionRecord, FrameRecord, Session, Target


async def _flood_server(total: int, text: bool) -> tuple[asyncio.Server, int]:
    line = b"noise noise noise 0123456789 noise noise noise noise noise noise\r\n"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = 0
        try:
            while sent < total:
                block = (line * 64)[:4096] if text else os.urandom(4096)
                writer.write(block)
                await writer.drain()
                sent += len(block)
            await reader.read()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("text", [False, True])
async def test_a_flooding_peer_is_summarised_not_stored(text: bool) -> None:
    server, port = await _flood_server(8_000_000, text)
    async with server:
        options = ProbeOptions("127.0.0.1", port, icmp=False, timeout=0.5, banner_window=0.3,
                               release_timeout=0.3, discovery_budget=1)
        session = await run_probe(options, ledger=MemoryLedger())
    kept = sum(len(f.data) for f in session.frames if f.direction is Direction.RX)
    dropped = sum(c.bytes_dropped for c in session.connections)
    assert dropped > 0
    noise = [f for f in session.frames if f.direction is Direction.RX
             and f.kind not in ("hdlc", "wrapper")]
    per_conn = {c.id: sum(len(f.data) for f in noise if f.conn_id == c.id)
                for c in session.connections}
    assert all(v <= wire.KEEP_NOISE_PER_CONNECTION for v in per_conn.values()), per_conn
    assert len(noise) <= wire.KEEP_NOISE_CHUNKS_PER_CONNECTION * len(session.connections)
    assert kept <= wire.KEEP_PER_RUN
    flood = [f for f in session.findings if f.code == "link.flood"]
    assert flood and flood[0].severity == "warning"
    assert sum(f.data["bytes_dropped"] for f in flood) == dropped
    assert len(session.dumps()) < 3_000_000
    assert Session.loads(session.dumps()).connections[0].bytes_dropped == (
        session.connections[0].bytes_dropped)


@pytest.mark.parametrize("kind", ["random", "text", "flags", "half-frames"])
def test_the_splitter_holds_about_one_frame(kind: str) -> None:
    """Whatever arrives, the undecided bytes stay under 64 KiB of text/noise plus the longest
    frame (HDLC 2 KiB; a wrapper PDU up to 64 KiB) plus the read that brought them."""
    splitter = StreamSplitter(direction="rx")
    frame = hd.build_i(hd.ServerAddress(1, 1, 2), 16, to_server=False, ns=0, nr=0,
                       info=b"\xc4\x01\xc1\x00\x09\x04abcd")
    noise = random.Random(10)  # seeded: a failure can be replayed
    source = {
        "random": lambda: noise.randbytes(4096),
        "text": lambda: b"hello meter, this is not dlms\r\n" * 132,
        "flags": lambda: b"\x7e" * 4096,
        "half-frames": lambda: (frame[: len(frame) // 2] * 300)[:4096],
    }[kind]
    worst = 0
    for _ in range(300):  # 1.2 MB: the bound is reached within the first 64 KiB
        splitter.feed(source())
        worst = max(worst, splitter.pending)
    assert worst <= _BOUND, worst
    if kind != "random":  # nothing here can be a wrapper header: one frame's worth at most
        assert worst <= MAX_GAP + 4096 + 2048, worst


# 64 KiB of noise, then a wrapper header found in it that claims 64 KiB more, plus one read.
_BOUND = MAX_GAP + WRAPPER_HEADER + 0xFFFF + 4096


@pytest.mark.parametrize("seed", range(8))
def test_noise_that_looks_like_a_wrapper_header_is_held_only_until_its_length(seed: int) -> None:
    """Random bytes hold a wrapper header now and then (00 01, two wPorts under 0x4000, a
    length, an APDU tag: about once in 5 MB); its claimed length, up to 64 KiB, is held
    until it has arrived, then the bytes are given out as noise. The worst case, built."""
    rng = random.Random(seed)

    def clean(k: int) -> bytes:  # noise with no 7E and no 00 01 in it
        return bytes(b if b not in (0x7E, 0x00) else 0x55 for b in rng.randbytes(k))

    header = bytes.fromhex("0001 0001 0001 FFFF C4")  # GET-Response claiming 65,535 bytes
    stream = clean(MAX_GAP - 100) + header + clean(3 * MAX_GAP)
    splitter = StreamSplitter(direction="rx")
    worst, given = 0, 0
    for i in range(0, len(stream), 4096):
        given += sum(len(c.data) for c in splitter.feed(stream[i : i + 4096]))
        worst = max(worst, splitter.pending)
    given += sum(len(c.data) for c in splitter.close())
    assert MAX_GAP + 0xFFFF > worst > MAX_GAP, worst  # the header's claim was held...
    assert worst <= _BOUND, worst
    assert given == len(stream)  # ...and every byte given out once


def _session(frames: int, kind: str) -> Session:
    s = Session(id="x", tool_version="t", started_at="2026-01-01T00:00:00.000+00:00",
                target=Target(host="h", port=1))
    s.connections.append(ConnectionRecord(1, "h", 1, 0.0, 0.001))
    get = bytes.fromhex("C001C100030100010800FF0200")
    for i in range(frames):
        data = (build_wrapper(16, 1, get) if kind == "wrapper"
                else hd.build_snrm(hd.ServerAddress(1, 1, 2), 16))
        s.frames.append(FrameRecord(i, 1, Direction.TX, i * 0.1, data))
    return s


@pytest.mark.parametrize("kind", ["wrapper", "snrm"])
def test_rules_stay_linear_on_a_long_unanswered_connection(kind: str) -> None:
    """A long connection of requests without answers (a poller talking to a dead meter, as
    captures show): asking "what answered this?" per frame was quadratic (40,000 frames:
    39 s, now under 3 s). Four times the frames must take well under 16 times as long."""
    small, large = _session(2500, kind), _session(10000, kind)
    diagnose(_session(200, kind))  # imports and caches out of the timing

    def best_of_three(session: Session) -> float:
        # the shortest of three runs: a busy machine only ever adds time
        times = []
        for _ in range(3):
            start = time.perf_counter()
            diagnose(session)
            times.append(time.perf_counter() - start)
        return min(times)

    t_small, t_large = best_of_three(small), best_of_three(large)
    # linear is 4x, quadratic 16x: 10x leaves room for noise and still catches the latter
    assert t_large < 10 * t_small, (t_small, t_large)


def test_open_lists_at_most_fifty_connections() -> None:
    """A poller's capture holds tens of thousands of connections: `open` names the first 50."""
    from dlmsdoctor.cli.open_cmd import summary_lines

    s = _session(0, "snrm")
    s.connections = [ConnectionRecord(i, "h", 1, 0.0, 0.001) for i in range(1, 61)]
    lines = summary_lines(s)
    assert sum(1 for line in lines if line.startswith("  conn ")) == 50
    assert "  ... and 10 more connection(s)" in lines
