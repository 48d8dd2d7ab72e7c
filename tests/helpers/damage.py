"""Damaged files for the readers' fuzz tests: byte mutations, JSON mutations, and a runner that
feeds a file to ``dlmsdoctor open``/``report`` through the real entry point (``main.run``) in
process and says what the user got (exit code, stdout, stderr).

Used by tests/output/test_capture_read_fuzz.py and test_session_fuzz.py, and by the sweep
(``python -m tests.helpers.damage N``) whose figures go into the issue's closing note.
"""

from __future__ import annotations

import copy
import json
import random
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"

# What a damaged file may end in: done (0), findings (1), cannot read (2), usage (64).
# Never 70 (a bug of ours) and never a traceback.
ALLOWED_EXITS = {0, 1, 2, 64}
# Words of Python's own messages: a user must never have to read them.
PYTHON_WORDS = ("argument after **", "__init__()", "unexpected keyword", "object is not",
                "not subscriptable", "fromhex", "codec can't", "unpack requires",
                "index out of range", "KeyError", "TypeError", "IndexError", "struct.error",
                "Errno", "invalid literal", "NoneType")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def problems(self, path: Path) -> list[str]:
        out = []
        if self.code not in ALLOWED_EXITS:
            out.append(f"exit {self.code}")
        if "Traceback" in self.stdout + self.stderr:
            out.append("traceback")
        if "no new diagnosis" in self.stderr or "dlmsdoctor.bug" in self.stdout:
            out.append("a rule or the facts failed on it")
        if "internal error" in self.stderr:
            out.append("internal error")
        if self.code == 2 and path.name not in self.stderr:
            out.append("message does not name the file")
        if self.code == 2 and len(self.stderr.strip().splitlines()) != 1:
            out.append("message is not one line")
        if any(word in self.stderr for word in PYTHON_WORDS):
            out.append("a Python-internal message")
        return out


def run_cli(args: list[str]) -> Outcome:
    """``dlmsdoctor ARGS`` through ``main.run`` (its top-level error handling included)."""
    from dlmsdoctor.cli.main import run

    runner = CliRunner()
    saved = sys.argv
    with runner.isolation() as streams:
        sys.argv = ["dlmsdoctor", *args]
        try:
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved
        stdout = streams[0].getvalue().decode("utf-8", "replace")
        stderr = streams[1].getvalue().decode("utf-8", "replace")
    return Outcome(code, stdout, stderr)


# --------------------------------------------------------------------------- byte mutations


def pcapng_blocks(buf: bytes) -> list[tuple[int, int]]:
    """(start, end) of each pcapng block, as far as the lengths hold."""
    out = []
    pos = 0
    while pos + 12 <= len(buf):
        total = struct.unpack_from("<I", buf, pos + 4)[0]
        if total < 12 or pos + total > len(buf):
            break
        out.append((pos, pos + total))
        pos += total
    return out


def mutate_bytes(buf: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One damage: bit flips, truncation, insertion, deletion, a duplicated slice or block,
    or a 32-bit field overwritten with an extreme value."""
    how = rng.choice(["flip", "flip", "truncate", "insert", "delete", "duplicate", "block",
                      "extreme"])
    data = bytearray(buf)
    if how == "flip" and data:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif how == "truncate":
        del data[rng.randrange(len(data) + 1):]
    elif how == "insert":
        i = rng.randrange(len(data) + 1)
        data[i:i] = rng.randbytes(rng.randint(1, 64))
    elif how == "delete" and data:
        i = rng.randrange(len(data))
        del data[i:i + rng.randint(1, 64)]
    elif how == "duplicate" and data:
        i = rng.randrange(len(data))
        j = min(len(data), i + rng.randint(1, 256))
        data[j:j] = data[i:j]
    elif how == "block":
        blocks = pcapng_blocks(buf)
        if blocks:
            start, end = rng.choice(blocks)
            at = rng.choice(blocks)[1]
            data[at:at] = buf[start:end]
    elif how == "extreme" and len(data) >= 4:
        i = rng.randrange(0, len(data) - 3)
        data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                    b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80"])
    return how, bytes(data)


# --------------------------------------------------------------------------- JSON mutations

_ODD_VALUES: list[Any] = [None, True, False, 0, -1, 1e308, 2**70, "", "zz", "ff", [], {},
                          [[[]]], {"a": {}}, "0" * 3, -0.5, "\u0000", "nan"]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:6]):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def mutate_json(doc: Any, rng: random.Random) -> tuple[str, str]:
    """One damage to a session document: a value of another type, a key removed or added, a
    deep nest, or the text cut or flipped."""
    how = rng.choice(["value", "value", "value", "drop", "extra", "deep", "long", "text"])
    doc = copy.deepcopy(doc)
    paths = _paths(doc)
    path = rng.choice(paths)
    if how == "value":
        doc = _set(doc, path, copy.deepcopy(rng.choice(_ODD_VALUES)))
    elif how == "drop" and path:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
    elif how == "extra":
        dicts = [p for p in paths if isinstance(_get(doc, p), dict)]
        target = _get(doc, rng.choice(dicts))
        target[rng.choice(["zz", "step_id", "frame", "data", "kind"])] = rng.choice(_ODD_VALUES)
    elif how in ("deep", "long"):
        doc = _set(doc, path, "__marker__")
    text = json.dumps(doc)
    if how == "deep":  # nested deeper than Python's JSON decoder may recurse
        depth = rng.choice([2_000, 100_000])
        text = text.replace('"__marker__"', "[" * depth + "]" * depth, 1)
    elif how == "long":  # past Python's 4300-digit limit, or not a number JSON allows
        text = text.replace('"__marker__"', rng.choice(["9" * 5000, "NaN", "-Infinity",
                                                         "1e999"]), 1)
    if how == "text":
        _, raw = mutate_bytes(text.encode(), rng)
        return how, raw.decode("utf-8", "replace")
    return how, text


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


# --------------------------------------------------------------------------- samples


def plain_pcap(pcapng: Path) -> bytes:
    """The packets of a dlmsdoctor pcapng as a classic pcap (what tcpdump writes): no comments,
    so it is read as a foreign capture and its rungs are rebuilt from the frames."""
    from dlmsdoctor.output.capture_read import read_raw

    raw = read_raw(pcapng)
    linktype = raw.packets[0].linktype if raw.packets else 1
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for p in raw.packets:
        chunks.append(struct.pack("<IIII", p.ts_us // 1_000_000, p.ts_us % 1_000_000,
                                  len(p.data), len(p.data)) + p.data)
    return b"".join(chunks)


def wireshark_pcapng(pcapng: Path, folder: Path) -> bytes | None:
    """The sample as Wireshark writes a pcapng of a tcpdump file (tshark pcap -> pcapng: no
    dlmsdoctor comments, Wireshark's own blocks and options); None without tshark."""
    import shutil
    import subprocess

    tshark = shutil.which("tshark")
    if tshark is None:
        return None
    pcap, out = folder / "plain.pcap", folder / "ws.pcapng"
    pcap.write_bytes(plain_pcap(pcapng))
    subprocess.run([tshark, "-r", str(pcap), "-F", "pcapng", "-w", str(out)], check=True,
                   capture_output=True, timeout=60)
    return out.read_bytes()


def raw_ip_tcp(src_port: int, dst_port: int, seq: int, flags: int, payload: bytes) -> bytes:
    """An IPv4/TCP packet between the client 127.0.0.1 and the meter 127.0.0.2:4059."""
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, 0, 0x50, flags, 1024, 0, 0)
    total = 20 + len(tcp) + len(payload)
    client, meter = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2])
    src, dst = (meter, client) if src_port == 4059 else (client, meter)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0, src, dst)
    return ip + tcp + payload


def pcap_of(packets: list[tuple[int, bytes]], linktype: int = 101) -> bytes:
    """A classic pcap of (microseconds, packet) records."""
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for ts_us, data in packets:
        chunks.append(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(data),
                                  len(data)) + data)
    return b"".join(chunks)


def samples(wireshark_in: Path | None = None) -> list[tuple[str, bytes]]:
    """(name, bytes) of every sample: session JSON, dlmsdoctor pcapng, a plain pcap, and with
    ``wireshark_in`` (a scratch folder) Wireshark's pcapng when tshark is installed."""
    out = [(p.name, p.read_bytes()) for p in sorted(CAPTURES.glob("*.session.json"))]
    for p in sorted(CAPTURES.glob("*.pcapng")):
        out.append((p.name, p.read_bytes()))
        out.append((p.with_suffix(".pcap").name, plain_pcap(p)))
        if wireshark_in is not None:
            ws = wireshark_pcapng(p, wireshark_in)
            if ws is not None:
                out.append((p.with_suffix(".ws.pcapng").name, ws))
    return out


# --------------------------------------------------------------------------- the sweep


def sweep(count: int, folder: Path, seed: int = 1) -> tuple[Counter[int], list[str], int]:
    """``count`` damaged files per sample and kind, each through open and report."""
    rng = random.Random(seed)
    exits: Counter[int] = Counter()
    failures: list[str] = []
    files = 0
    for name, raw in samples(folder):
        doc = json.loads(raw) if name.endswith(".json") else None
        for n in range(count):
            if doc is not None and n % 2 == 0:
                how, text = mutate_json(doc, rng)
                data = text.encode("utf-8", "replace")
            else:
                how, data = mutate_bytes(raw, rng)
            path = folder / f"{n}-{name}"
            path.write_bytes(data)
            files += 1
            extra = [[], ["--format", "html", "--lang", "es"], ["--format", "json"]][n % 3]
            out = folder / "out.pcapng"
            for command, args in (("open", ["--capture", str(out)] if n % 2 else []),
                                  ("report", extra)):
                got = run_cli([command, str(path), *args])
                exits[got.code] += 1
                bad = got.problems(path)
                if bad:
                    failures.append(f"{command} {name} #{n} ({how}): {', '.join(bad)}: "
                                    f"{(got.stderr or got.stdout).strip()[-300:]}")
    return exits, failures, files


if __name__ == "__main__":
    import tempfile

    per = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        exits, failures, files = sweep(per, Path(tmp), seed=int(sys.argv[2]) if len(
            sys.argv) > 2 else 1)
    print(f"files {files}, runs {sum(exits.values())}, "
          f"exits {({int(k): v for k, v in sorted(exits.items())})}, failures {len(failures)}")
    for line in failures[:40]:
        print(" ", line)
