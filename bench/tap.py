"""The tap's own cost: added latency per frame against a direct connection, and memory on a long
run. Run by hand:

    .venv/bin/python bench/tap.py [--rounds 3000]
    .venv/bin/python bench/tap.py --polls 100000

Latency: a scripted meter on loopback answers each HDLC frame at once with a canned answer
(GET request -> GET response, SNRM -> UA, ...); a blocking client sends a GET request and reads
the whole answer, ``--rounds`` times directly and as many times through the tap (interleaved
in batches so that machine noise hits both alike). A round trip crosses the relay twice (the
request, then the answer), so the added latency per frame is half the added round trip. Target
(issue 12): median under 1 ms on loopback.

Memory (``--polls N``): a poller polls N times through the tap (one GET each, a new connection
with SNRM, AARQ, RLRQ and DISC every 100 polls); the process's resident memory is printed every
N/10 polls. Frames stream to a file; the session keeps a bounded part, so the figure should stay
flat after the first thousands of frames.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from dlmsdoctor.codec.hdlc import (
    HdlcParams,
    ServerAddress,
    build_disc,
    build_i,
    build_snrm,
    build_ua,
)
from dlmsdoctor.tap.core import Tap, TapOptions

ADDRESS = ServerAddress(1, 17, 2)
GET = bytes.fromhex("C001C1000100002A0000FF0200")
GET_RESPONSE = bytes.fromhex("C401C100090C4C4750313233343536373839")
AARQ = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")
AARE = bytes.fromhex("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F"
                     "040000101D04000007")
RLRQ, RLRE = bytes.fromhex("6203800100"), bytes.fromhex("6303800100")


def _i(apdu: bytes, ns: int, nr: int, to_server: bool) -> bytes:
    return build_i(ADDRESS, 16, to_server=to_server, ns=ns & 7, nr=nr & 7, info=apdu)


class CannedMeter:
    """Answers each frame it receives at once: SNRM/DISC -> UA, an I-frame -> the matching
    answer with the right sequence numbers. One thread per connection (blocking sockets)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        vs = 0
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while len(buf) >= 3 and buf[0] == 0x7E:
                    size = ((buf[1] & 7) << 8 | buf[2]) + 2
                    if len(buf) < size:
                        break
                    frame, buf = buf[:size], buf[size:]
                    conn.sendall(self._answer(frame, vs))
                    if len(frame) > 12:
                        vs += 1

    @staticmethod
    def _answer(frame: bytes, vs: int) -> bytes:
        control = frame[3 + 2 + 1]  # 2-byte server, 1-byte client
        if control in (0x93, 0x53):
            return build_ua(ADDRESS, 16, HdlcParams() if control == 0x93 else None)
        ns = (control >> 1) & 7
        apdu = frame[12:-3]  # after flag, format, addresses, control, HCS and the LLC
        answer = {0x60: AARE, 0x62: RLRE}.get(apdu[0], GET_RESPONSE)
        return _i(answer, vs, ns + 1, to_server=False)


class TapRunner:
    def __init__(self, target_port: int, frames_path: Path | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.tap = Tap(TapOptions("127.0.0.1", 0, "127.0.0.1", target_port),
                       frames_path=frames_path)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> TapRunner:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.tap.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.tap.stop("bench"), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Poller:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ns = self.nr = 0

    def ask(self, frame: bytes) -> bytes:
        self.sock.sendall(frame)
        head = self._exactly(3)
        return head + self._exactly(((head[1] & 7) << 8 | head[2]) + 2 - 3)

    def _exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def request(self, apdu: bytes) -> bytes:
        answer = self.ask(_i(apdu, self.ns, self.nr, to_server=True))
        self.ns, self.nr = self.ns + 1, self.nr + 1
        return answer

    def open(self) -> None:
        self.ask(build_snrm(ADDRESS, 16))
        self.ns = self.nr = 0
        self.request(AARQ)

    def close(self, release: bool = True) -> None:
        if release:
            self.request(RLRQ)
            self.ask(build_disc(ADDRESS, 16))
        self.sock.close()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def latency(rounds: int) -> None:
    meter = CannedMeter()
    direct_times: list[float] = []
    tap_times: list[float] = []
    with TapRunner(meter.port) as runner:
        direct, relayed = Poller(meter.port), Poller(runner.tap.port)
        direct.open()
        relayed.open()
        batch = 100
        for _ in range(max(1, rounds // batch)):
            for poller, times in ((direct, direct_times), (relayed, tap_times)):
                for _ in range(batch):
                    start = time.perf_counter_ns()
                    poller.request(GET)
                    times.append((time.perf_counter_ns() - start) / 1e6)
        direct.close()
        relayed.close()
        time.sleep(0.1)
    session = runner.tap.session
    assert not session.findings, [f.message for f in session.findings]  # a clean poll
    d50, t50 = statistics.median(direct_times), statistics.median(tap_times)
    d99, t99 = _pct(direct_times, 0.99), _pct(tap_times, 0.99)
    print(f"round trips: {len(direct_times)} direct, {len(tap_times)} through the tap "
          "(GET request + GET response, 2 frames each)")
    print(f"direct      median {d50:.3f} ms   p99 {d99:.3f} ms")
    print(f"through tap median {t50:.3f} ms   p99 {t99:.3f} ms")
    print(f"added per round trip: median {t50 - d50:.3f} ms, p99 {t99 - d99:.3f} ms")
    print(f"added per frame (half): median {(t50 - d50) / 2:.3f} ms, p99 {(t99 - d99) / 2:.3f}"
          f" ms  (target: median < 1 ms)")


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def memory(polls: int) -> None:
    meter = CannedMeter()
    with tempfile.TemporaryDirectory() as folder:
        frames = Path(folder) / "frames.jsonl"
        with TapRunner(meter.port, frames) as runner:
            poller: Poller | None = None
            start = time.monotonic()
            step = max(1, polls // 10)
            for n in range(polls):
                if n % 100 == 0:
                    if poller is not None:
                        poller.close()
                    poller = Poller(runner.tap.port)
                    poller.open()
                poller.request(GET)  # type: ignore[union-attr]
                if (n + 1) % step == 0:
                    print(f"{n + 1:>8} polls  {time.monotonic() - start:7.1f} s  "
                          f"RSS {_rss_mb():7.1f} MB  frames recorded {runner.tap.frame_count}"
                          f"  file {os.path.getsize(frames) / 1e6:.1f} MB")
            if poller is not None:
                poller.close()
            time.sleep(0.2)
        session = runner.tap.session
        print(f"session in memory: {len(session.frames)} of {runner.tap.frame_count} frames, "
              f"{len(session.findings)} finding(s); RSS at the end {_rss_mb():.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--polls", type=int, default=0)
    args = parser.parse_args()
    if args.polls:
        memory(args.polls)
    else:
        latency(args.rounds)


if __name__ == "__main__":
    main()
