"""Decode speed against gurux-dlms's translator, same frames, same process. Run by hand:

    .venv/bin/python bench/decode.py [--seconds 2]

Prints frames per second for (a) HDLC framing + lint, (b) the issue's "full decode": HDLC
parse + lint + the APDU decoded into its full span tree, (c) the whole `decode` pipeline on top
of that (stream splitting, echo check, reassembly, the HDLC span tree, APDU spans nested in it),
and (t) GXDLMSTranslator.messageToXml, with the ratios a/t, b/t and c/t.
Targets (issue 2): a/t >= 10, b/t >= 2; c/t is printed for information.
Also times the cold start of `dlmsdoctor decode HEX` (target < 0.4 s).

    .venv/bin/python bench/decode.py --make-log poller.log --megabytes 10

writes a realistic poller log of that size instead (timestamped TX/RX lines: SNRM/UA, AARQ/AARE,
GET requests and responses, DISC), to time `dlmsdoctor decode -f` on large inputs with
`/usr/bin/time -v`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.decode import decode_bytes
from dlmsdoctor.codec.hdlc import (
    HdlcParams,
    ServerAddress,
    build_disc,
    build_i,
    build_snrm,
    build_ua,
    parse_hdlc,
)


def _frames() -> list[bytes]:
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSData, GXDLMSRegister

    public = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.HDLC)
    low = GXDLMSClient(True, 1, 1, Authentication.LOW, "12345678", InterfaceType.HDLC)
    server = ServerAddress(1, 17, 2)
    # Replies as dlmsdoctor's simulated meter encodes them (gurux's generateAARE underneath).
    aare_ok = bytes.fromhex(
        "6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f0400001e1d04000007"
    )
    aare_auth_failure = bytes.fromhex(
        "6129a109060760857405080101a203020101a305a10302010dbe10040e0800065f1f0400001e1d04000007"
    )
    get_resp = bytes.fromhex("c401c100090d4c475a31323334353637383930")
    frames = [
        bytes(public.snrmRequest()),
        build_snrm(server, 16, HdlcParams()),
        build_ua(server, 16, HdlcParams(max_info_tx=128, max_info_rx=128)),
        *[bytes(f) for f in public.aarqRequest()],
        *[bytes(f) for f in low.aarqRequest()],
        build_i(server, 16, to_server=False, ns=0, nr=1, info=aare_ok),
        build_i(server, 1, to_server=False, ns=0, nr=1, info=aare_auth_failure),
        *[bytes(f) for f in public.read(GXDLMSData("0.0.42.0.0.255"), 2)],
        *[bytes(f) for f in public.read(GXDLMSRegister("1.0.1.8.0.255"), 3)],
        build_i(server, 16, to_server=False, ns=1, nr=2, info=get_resp),
        build_disc(server, 16),
    ]
    return frames


def _make_log(path: str, megabytes: float) -> int:
    """Write a poller-style log of about ``megabytes`` MB; return the number of frames."""
    from dlmsdoctor.codec.model import hexs

    frames = _frames()
    # To the meter (server destination) is what the poller sent.
    sent = [parse_hdlc(f).fields["dest"]["role"] == "server" for f in frames]  # type: ignore[index]
    target = int(megabytes * 1_000_000)
    written = count = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            for i, frame in enumerate(frames):
                second = count % 60
                line = (
                    f"[2025-10-30 14:{count // 60 % 60:02d}:{second:02d}.{count % 1000:03d}] "
                    f"{'TX' if sent[i] else 'RX'}: {hexs(frame)}\n"
                )
                out.write(line)
                written += len(line)
                count += 1
    return count


def _parse_and_decode_apdu(frame: bytes) -> object:
    decoded = parse_hdlc(frame)
    return decode_apdu(decoded.apdu) if decoded.apdu else decoded


def _rate(fn: Callable[[bytes], object], frames: list[bytes], seconds: float) -> float:
    """Frames per second: the best of 5 rounds, each at least seconds/5 long."""
    rates = []
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while time.perf_counter() < deadline:
            for frame in frames:
                fn(frame)
            count += len(frames)
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def _cold_start(frame_hex: str, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "dlmsdoctor", "decode", frame_hex],
            check=False,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--make-log", metavar="PATH", help="write a large log and stop")
    parser.add_argument("--megabytes", type=float, default=1.0, help="size of --make-log")
    args = parser.parse_args()
    if args.make_log:
        count = _make_log(args.make_log, args.megabytes)
        print(f"{args.make_log}: {count} frames")
        return

    from gurux_dlms import GXDLMSTranslator
    from gurux_dlms.enums import TranslatorOutputType

    frames = _frames()
    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    # Sanity: both sides understand every frame.
    for frame in frames:
        assert parse_hdlc(frame).valid, parse_hdlc(frame).findings
        assert translator.messageToXml(frame), frame.hex()

    framing = _rate(parse_hdlc, frames, args.seconds)
    full = _rate(_parse_and_decode_apdu, frames, args.seconds)
    pipeline = _rate(decode_bytes, frames, args.seconds)
    gurux = _rate(translator.messageToXml, frames, args.seconds)
    print(f"frames in the mix:                   {len(frames)}")
    print(f"(a) framing + lint:                  {framing:10.0f} frames/s")
    print(f"(b) parse + lint + full APDU decode: {full:10.0f} frames/s")
    print(f"(c) whole `decode` pipeline:         {pipeline:10.0f} frames/s")
    print(f"(t) gurux translator messageToXml:   {gurux:10.0f} frames/s")
    print(f"ratio a/t: {framing / gurux:6.1f}x  (target >= 10x)")
    print(f"ratio b/t: {full / gurux:6.1f}x  (target >= 2x)")
    print(f"ratio c/t: {pipeline / gurux:6.1f}x  (information)")
    cold = _cold_start("7E A0 07 03 21 93 0F 01 7E")
    print(f"cold start `dlmsdoctor decode HEX`: {cold:6.3f} s median  (target < 0.4 s)")


if __name__ == "__main__":
    main()
