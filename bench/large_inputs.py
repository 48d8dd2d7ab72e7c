"""Large inputs for the resource bounds of issue 10 (nothing generated is committed). Run by hand:

    .venv/bin/python bench/large_inputs.py pcap big.pcap --megabytes 200
    /usr/bin/time -v .venv/bin/dlmsdoctor open big.pcap        # time and "Maximum resident"

writes a tcpdump-style pcap (Ethernet/IPv4/TCP, port 4059) of a poller reading a meter over
and over: one TCP connection per reading with SNRM/UA, AARQ/AARE, GET requests and answers,
RLRQ/RLRE, DISC/UA and a FIN each way.

    .venv/bin/python bench/large_inputs.py flood --port 4070 --megabytes 50 [--text]
    /usr/bin/time -v .venv/bin/dlmsdoctor probe 127.0.0.1:4070 --no-icmp

serves a hostile peer on 127.0.0.1 that sends MEGABYTES of noise (random bytes, or text lines
with --text) to whoever connects, then keeps the connection open until the client closes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.probes import apdus

SERVER = hd.ServerAddress(1, 1, 2)
AARE = bytes.fromhex("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400"
                     "00101104000007")
GET_ANSWER = bytes.fromhex("C401C100090831323334353637380A")


def wrapper_conversation(gets: int = 8) -> list[tuple[bool, bytes]]:
    """One poller reading over the IEC 62056-47 wrapper."""
    from dlmsdoctor.codec.wrapper import build_wrapper

    out = [(True, build_wrapper(16, 1, apdus.build_aarq())), (False, build_wrapper(1, 16, AARE))]
    for n in range(gets):
        obis = bytes((1, 0, 1, 8, n % 5, 255))
        out.append((True, build_wrapper(16, 1, bytes((0xC0, 0x01, 0xC1, 0x00, 0x03)) + obis
                                        + b"\x02\x00")))
        out.append((False, build_wrapper(1, 16, GET_ANSWER)))
    out.append((True, build_wrapper(16, 1, apdus.build_rlrq())))
    out.append((False, build_wrapper(1, 16, bytes.fromhex("6303800100"))))
    return out


def conversation(gets: int = 8) -> list[tuple[bool, bytes]]:
    """One poller reading: (from_client, payload) in order."""
    out: list[tuple[bool, bytes]] = []
    out.append((True, hd.build_snrm(SERVER, 16)))
    out.append((False, hd.build_ua(SERVER, 16, hd.HdlcParams())))
    ns = nr = 0

    def i_frame(to_server: bool, apdu: bytes) -> bytes:
        nonlocal ns, nr
        if to_server:
            frame = hd.build_i(SERVER, 16, to_server=True, ns=ns, nr=nr, info=apdu)
            ns = (ns + 1) % 8
        else:
            frame = hd.build_i(SERVER, 16, to_server=False, ns=nr, nr=ns, info=apdu)
            nr = (nr + 1) % 8
        return frame

    out.append((True, i_frame(True, apdus.build_aarq())))
    out.append((False, i_frame(False, AARE)))
    for n in range(gets):
        obis = bytes((1, 0, 1, 8, n % 5, 255))
        out.append((True, i_frame(True, bytes((0xC0, 0x01, 0xC1, 0x00, 0x03)) + obis
                                  + b"\x02\x00")))
        out.append((False, i_frame(False, GET_ANSWER)))
    out.append((True, i_frame(True, apdus.build_rlrq())))
    out.append((False, i_frame(False, bytes.fromhex("6303800100"))))
    out.append((True, hd.build_disc(SERVER, 16)))
    out.append((False, hd.build_ua(SERVER, 16)))
    return out


def _ip_tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
            payload: bytes) -> bytes:
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + tcp + payload


def write_pcap(path: str, megabytes: float, one_connection: bool = False,
               wrapper: bool = False, reset_at: tuple[int, ...] = ()) -> None:
    """``one_connection``: a poller that keeps one TCP connection and one association and
    reads for ever (the rules then walk one very long connection). ``reset_at``: the numbers
    (from 0) of the connections where the meter answers the AARQ with a TCP reset."""
    client, meter = bytes((10, 0, 0, 2)), bytes((10, 0, 0, 5))
    target = int(megabytes * 1_000_000)
    make = wrapper_conversation if wrapper else conversation
    talk = make()
    if one_connection:
        talk = make(gets=max(1, int(megabytes * 1_000_000 / 130 / 2)))
    written = 0
    t_us = 1_764_800_000 * 1_000_000
    sport = 40000
    number = -1
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        while written < target:
            number += 1
            sport = 40000 + (sport - 39999) % 20000
            cseq, mseq = 1000, 5000
            packets = [(True, 0x02, b""), (False, 0x12, b""), (True, 0x10, b"")]
            if number in reset_at:  # the meter drops the association request: a reset
                cut = 1 if wrapper else 3  # through the AARQ
                packets += [(c, 0x18, p) for c, p in talk[:cut]] + [(False, 0x14, b"")]
            else:
                packets += [(c, 0x18, p) for c, p in talk]
                packets += [(True, 0x11, b""), (False, 0x11, b""), (True, 0x10, b"")]
            for n, (from_client, flags, payload) in enumerate(packets):
                if from_client:
                    pkt = _ip_tcp(client, meter, sport, 4059, cseq, mseq if n else 0, flags,
                                  payload)
                    cseq += len(payload) + (1 if flags & 0x03 else 0)
                else:
                    pkt = _ip_tcp(meter, client, 4059, sport, mseq, cseq, flags, payload)
                    mseq += len(payload) + (1 if flags & 0x03 else 0)
                t_us += 20_000
                out.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(pkt),
                                      len(pkt)))
                out.write(pkt)
                written += 16 + len(pkt)
            t_us += 5_000_000
    print(f"wrote {path}: {written / 1e6:.1f} MB", file=sys.stderr)


async def flood(port: int, megabytes: float, text: bool) -> None:
    total = int(megabytes * 1_000_000)
    line = b"noise noise noise 0123456789 noise noise noise noise noise noise\r\n"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = 0
        try:
            while sent < total:
                block = (line * 64)[:4096] if text else os.urandom(4096)
                writer.write(block)
                await writer.drain()
                sent += len(block)
            await reader.read()  # until the client closes
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
        print(f"flooded a client with {sent / 1e6:.1f} MB", file=sys.stderr)

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pcap")
    p.add_argument("path")
    p.add_argument("--megabytes", type=float, default=200)
    p.add_argument("--one-connection", action="store_true")
    p.add_argument("--wrapper", action="store_true", help="the wrapper instead of HDLC")
    p.add_argument("--reset-at", type=int, nargs="*", default=[],
                   help="connections (from 0) where the meter resets after the AARQ")
    f = sub.add_parser("flood")
    f.add_argument("--port", type=int, default=4070)
    f.add_argument("--megabytes", type=float, default=50)
    f.add_argument("--text", action="store_true")
    args = parser.parse_args()
    if args.what == "pcap":
        write_pcap(args.path, args.megabytes, args.one_connection, args.wrapper,
                   tuple(args.reset_at))
    else:
        asyncio.run(flood(args.port, args.megabytes, args.text))


if __name__ == "__main__":
    main()
