"""Decode speed against gurux-dlms's translator, same frames, same run. Run by hand:

    .venv/bin/python bench/decode.py [--seconds 2] [--frames 20000]

First the end-to-end ratio (issue 14), on two corpora written as poller logs (one timestamped
TX/RX line per frame): a synthetic SNRM/UA/AARQ/AARE/GET mix whose GET responses, invoke ids
and sequence numbers vary as a real poll's do, and real frames published in issue threads
(tests/vectors/real_frames.json and Kaifa pushes). "us" is `dlmsdoctor decode -f LOG --json`
and `dlmsdoctor decode -f LOG` as a user runs them (a new process, output to /dev/null); gurux
is GXDLMSTranslator.messageToXml over the same frames read from the same file, in this process
(the translation alone), and on a second line the same as a script a gurux user would run (start
the interpreter, import gurux, translate, print the XML), as its own process like ours.
Rounds alternate between the two so that a loaded machine slows both alike; the best of three
counts. Rates are per second of CPU time (ours: the child process's user + system time, start-up
included; gurux: this process's), so that other work on the machine does not decide the ratio.
Target: us/gurux >= 2 for --json, the view at least as fast.

Then the parts, in this process: (a) HDLC framing + lint, (b) parse + the APDU's span tree,
(c) the decode pipeline; and the cold start of `dlmsdoctor decode HEX` (target < 0.4 s).

    .venv/bin/python bench/decode.py --make-log poller.log --megabytes 10

writes a realistic poller log of that size instead, to time `dlmsdoctor decode -f` on large
inputs with `/usr/bin/time -v`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


def _poll_mix(count: int) -> list[tuple[str, bytes]]:
    """A poller's traffic: connect, log in, read registers, release; values, invoke ids and
    sequence numbers change from poll to poll as they do on a real line."""
    base = _frames()
    server = ServerAddress(1, 17, 2)
    out: list[tuple[str, bytes]] = []
    poll = 0
    while len(out) < count:
        out += [("TX", base[1]), ("RX", base[2]), ("TX", base[3]), ("RX", base[7])]
        for k in range(6):
            invoke = (poll + k) % 16
            obis = bytes((1, 0, 1 + k, 8, 0, 255))
            request = bytes((0xC0, 0x01, 0xC0 | invoke, 0x00, 0x03)) + obis + b"\x02\x00"
            value = (poll * 7919 + k * 104729) & 0xFFFFFFFF
            response = bytes((0xC4, 0x01, 0xC0 | invoke, 0x00, 0x06)) + value.to_bytes(4, "big")
            ns = (k + 1) % 8
            out.append(("TX", build_i(server, 16, to_server=True, ns=ns, nr=ns, info=request)))
            out.append(("RX", build_i(server, 16, to_server=False, ns=ns, nr=(ns + 1) % 8,
                                      info=response)))  # fmt: skip
        out += [("TX", base[-1]), ("RX", base[2])]
        poll += 1
    return out[:count]


def _real_frames(count: int) -> list[tuple[str, bytes]]:
    path = Path(__file__).parent.parent / "tests" / "vectors" / "real_frames.json"
    frames = [bytes.fromhex(v["hex"]) for v in json.loads(path.read_text())["frames"]]
    return [("RX", frames[i % len(frames)]) for i in range(count)]


def _write_log(path: Path, frames: list[tuple[str, bytes]]) -> None:
    from dlmsdoctor.codec.model import hexs

    with path.open("w", encoding="utf-8") as out:
        for count, (word, frame) in enumerate(frames):
            stamp = f"2025-10-30 14:{count // 60 % 60:02d}:{count % 60:02d}.{count % 1000:03d}"
            out.write(f"[{stamp}] {word}: {hexs(frame)}\n")


def _make_log(path: str, megabytes: float) -> int:
    """Write a poller-style log of about ``megabytes`` MB; return the number of frames."""
    frames = _poll_mix(int(megabytes * 1_000_000 / 60) + 1)
    _write_log(Path(path), frames)
    return len(frames)


def _gurux_log_rate(path: Path) -> float:
    """gurux's translator on every frame of the log (hex read from the same file)."""
    from gurux_dlms import GXDLMSTranslator
    from gurux_dlms.enums import TranslatorOutputType

    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    start = time.process_time()
    count = 0
    with contextlib.redirect_stdout(io.StringIO()):  # gurux prints "Invalid data type." etc.
        for line in path.read_text(encoding="utf-8").splitlines():
            frame = bytearray.fromhex(line.split(": ", 1)[1])
            with contextlib.suppress(Exception):  # it refuses some real frames; count them too
                translator.messageToXml(frame)
            count += 1
    return count / (time.process_time() - start)


# What a user of gurux-dlms writes to translate a log: read it, translate each frame, print the
# XML. Run as its own process, like `dlmsdoctor decode`, so both pay their start-up.
_GURUX_SCRIPT = """
import sys
from gurux_dlms import GXDLMSTranslator
from gurux_dlms.enums import TranslatorOutputType
translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        try:
            print(translator.messageToXml(bytearray.fromhex(line.split(": ", 1)[1])))
        except Exception as exc:
            print("error", exc)
"""


def _process_cpu_rate(frames: int, argv: list[str]) -> float:
    """Frames per second of CPU time (user + system) of a whole process, start-up included:
    on a machine shared with other work, wall time measures the neighbours."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return frames / cpu


def _cli_rate(path: Path, frames: int, *extra: str) -> float:
    """Frames per second of CPU time (user + system) of the whole `dlmsdoctor` process, start-up
    included: on a machine shared with other work, wall time measures the neighbours."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "dlmsdoctor", "decode", "-f", str(path), *extra],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return frames / cpu


def _end_to_end(name: str, frames: list[tuple[str, bytes]], rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "poller.log"
        _write_log(path, frames)
        best = {"json": 0.0, "view": 0.0, "gurux": 0.0, "gurux_process": 0.0}
        script = Path(tmp) / "gurux_translate.py"
        script.write_text(_GURUX_SCRIPT)
        for _ in range(rounds):
            best["gurux"] = max(best["gurux"], _gurux_log_rate(path))
            best["gurux_process"] = max(
                best["gurux_process"],
                _process_cpu_rate(len(frames), [sys.executable, str(script), str(path)]),
            )
            best["json"] = max(best["json"], _cli_rate(path, len(frames), "--json"))
            best["view"] = max(best["view"], _cli_rate(path, len(frames)))
    print(
        f"{name:<22} {len(frames):6d} frames   --json {best['json']:7.0f}/s  "
        f"view {best['view']:7.0f}/s  gurux {best['gurux']:7.0f}/s   "
        f"ratio --json {best['json'] / best['gurux']:4.2f}x  "
        f"view {best['view'] / best['gurux']:4.2f}x"
    )
    print(
        f"{'':<22} {'':6s}          gurux as a script (start-up, print the XML) "
        f"{best['gurux_process']:7.0f}/s   "
        f"ratio --json {best['json'] / best['gurux_process']:4.2f}x  "
        f"view {best['view'] / best['gurux_process']:4.2f}x"
    )


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
    parser.add_argument("--frames", type=int, default=20000, help="frames per corpus")
    parser.add_argument("--make-log", metavar="PATH", help="write a large log and stop")
    parser.add_argument("--megabytes", type=float, default=1.0, help="size of --make-log")
    args = parser.parse_args()
    if args.make_log:
        count = _make_log(args.make_log, args.megabytes)
        print(f"{args.make_log}: {count} frames")
        return

    print("end to end, frames per CPU second (best of 3 alternating rounds; target --json >= 2x):")
    _end_to_end("synthetic poll mix", _poll_mix(args.frames))
    _end_to_end("real frames", _real_frames(args.frames // 2))
    print()
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
    print(f"ratio a/t: {framing / gurux:6.1f}x  (parts; the end-to-end ratio above is the one)")
    print(f"ratio b/t: {full / gurux:6.1f}x")
    print(f"ratio c/t: {pipeline / gurux:6.1f}x")
    cold = _cold_start("7E A0 07 03 21 93 0F 01 7E")
    print(f"cold start `dlmsdoctor decode HEX`: {cold:6.3f} s median  (target < 0.4 s)")


if __name__ == "__main__":
    main()
