"""Damaged pcap and pcapng files: exit 2 with one line naming the file and the place, never a
traceback, never exit 70 (issue 10 item 8).

Each sample in ``captures/`` is damaged (bit flips, truncation, insertion, deletion, a
duplicated slice or pcapng block, an extreme 32-bit value) as a dlmsdoctor pcapng and as a plain
pcap (read as a foreign capture: its rungs are rebuilt from the frames), then given to
``dlmsdoctor open`` and ``dlmsdoctor report`` through the real entry point. The default run
tries a few hundred files; ``-m slow`` runs the big sweep.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.damage import mutate_bytes, raw_ip_tcp, run_cli, samples, sweep

CAPTURE_SAMPLES = [(name, raw) for name, raw in samples() if not name.endswith(".json")]


def _check(path: Path, args: tuple[str, ...] = ()) -> None:
    for command in ("open", "report"):
        got = run_cli([command, str(path), *args])
        assert got.problems(path) == [], (command, got.code, got.stderr[-500:])


@pytest.mark.parametrize(("name", "raw"), CAPTURE_SAMPLES, ids=[n for n, _ in CAPTURE_SAMPLES])
def test_mutations_of_every_sample(name: str, raw: bytes, tmp_path: Path) -> None:
    rng = random.Random(name)
    for n in range(12):
        _, data = mutate_bytes(raw, rng)
        path = tmp_path / f"{n}-{name}"
        path.write_bytes(data)
        _check(path)


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sample=st.sampled_from(CAPTURE_SAMPLES), seed=st.integers(0, 2**32 - 1),
       rounds=st.integers(1, 3))
def test_hypothesis_mutations(sample: tuple[str, bytes], seed: int, rounds: int,
                              tmp_path: Path) -> None:
    name, data = sample
    rng = random.Random(seed)
    for _ in range(rounds):
        _, data = mutate_bytes(data, rng)
    path = tmp_path / f"h-{name}"
    path.write_bytes(data)
    _check(path)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(magic=st.sampled_from([b"\x0a\x0d\x0d\x0a", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",
                              b"\x4d\x3c\xb2\xa1"]), body=st.binary(max_size=400))
def test_random_bytes_behind_a_capture_magic(magic: bytes, body: bytes, tmp_path: Path) -> None:
    path = tmp_path / "random.pcapng"
    path.write_bytes(magic + body)
    _check(path)


def _block(block_type: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _pcapng_with_resolution(tsresol: int, ts: int) -> bytes:
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 101, 0, 65535)
                 + struct.pack("<HH", 9, 1) + bytes([tsresol]) + b"\x00" * 3
                 + struct.pack("<HH", 0, 0))
    packet = bytes.fromhex("4500002800010000400600007f0000017f000001")  # IPv4 header
    packet += struct.pack("!HHIIBBHHH", 40000, 4059, 1, 0, 0x50, 0x18, 1024, 0, 0)
    epb = _block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(packet),
                                len(packet)) + packet)
    return shb + idb + epb


def test_tsresol_zero_and_a_huge_timestamp_is_named_not_an_overflow(tmp_path: Path) -> None:
    path = tmp_path / "tsresol.pcapng"
    path.write_bytes(_pcapng_with_resolution(0, 2**63))
    got = run_cli(["open", str(path)])
    assert got.code == 2, got.stderr
    assert str(path) in got.stderr and "timestamp out of range" in got.stderr
    assert "at byte" in got.stderr and "Overflow" not in got.stderr


def test_a_block_length_that_runs_past_the_file_names_its_offset(tmp_path: Path) -> None:
    raw = (Path(__file__).resolve().parents[2] / "captures" / "healthy.pcapng").read_bytes()
    second = struct.unpack_from("<I", raw, 4)[0]  # the block after the section header
    damaged = bytearray(raw)
    struct.pack_into("<I", damaged, second + 4, 0x7FFFFFF0)
    path = tmp_path / "long.pcapng"
    path.write_bytes(bytes(damaged))
    got = run_cli(["report", str(path)])
    assert got.code == 2 and f"at byte {second}: block length" in got.stderr
    assert got.stderr.count("\n") == 1


def test_the_session_in_a_pcapng_header_is_checked_like_a_session_file(tmp_path: Path) -> None:
    """pcapng files used to skip the session check: a damaged field gave Python's message."""
    from dlmsdoctor.output.capture import write_capture
    from dlmsdoctor.session import Evidence, Session

    root = Path(__file__).resolve().parents[2]
    session = Session.loads((root / "captures" / "wrong-password.session.json").read_text())
    assert session.diagnosis is not None
    session.diagnosis.causes[0].evidence = [Evidence(note="x")]
    path = tmp_path / "own.pcapng"
    write_capture(session, path)
    good = run_cli(["open", str(path)])
    assert good.code == 0
    raw = path.read_bytes()
    for form in (b'{"note": "x", "frame": null, "step": null, "finding": null}',
                 b'{"note":"x","frame":null,"step":null,"finding":null}'):
        raw = raw.replace(form, b"7" + b" " * (len(form) - 1))  # same length: blocks stay whole
    path.write_bytes(raw)
    got = run_cli(["open", str(path)])
    assert got.code == 2
    assert "diagnosis.causes[0].evidence[0]: expected an object" in got.stderr
    assert "argument after **" not in got.stderr and str(path) in got.stderr


@pytest.mark.slow
def test_big_sweep(tmp_path: Path) -> None:
    exits, failures, files = sweep(200, tmp_path, seed=3)
    assert files == 200 * len(samples(tmp_path))
    assert failures == []
    assert 70 not in exits


def _sample_payloads() -> list[bytes]:
    """Every frame of the sample sessions: real HDLC and wrapper bytes to shuffle and cut."""
    import json as _json

    from tests.helpers.damage import CAPTURES

    out: list[bytes] = []
    for path in sorted(CAPTURES.glob("*.session.json")):
        doc = _json.loads(path.read_text(encoding="utf-8"))
        out += [bytes.fromhex(f["data"]) for f in doc["frames"]]
    return out


PAYLOADS = _sample_payloads()


packet_strategy = st.tuples(
    st.booleans(),  # from the client
    st.sampled_from([0x02, 0x12, 0x18, 0x10, 0x11, 0x04, 0x19]),  # SYN, SYN/ACK, PSH, ACK...
    st.one_of(st.sampled_from(PAYLOADS), st.binary(max_size=80),
              st.tuples(st.sampled_from(PAYLOADS), st.integers(0, 80)).map(lambda t: t[0][:t[1]])),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(packets=st.lists(packet_strategy, min_size=1, max_size=40), tsresol=st.integers(0, 255),
       base=st.integers(0, 2**64 - 1))
def test_structured_pcapng_with_shuffled_dlms_frames(packets: list[tuple[bool, int, bytes, int]],
                                                     tsresol: int, base: int,
                                                     tmp_path: Path) -> None:
    """Well-formed blocks around any TCP traffic of real and cut frames (any flags, sequence
    numbers, time resolution and start): the foreign reader and the rebuilt rungs take it."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 101, 0, 65535) + struct.pack("<HH", 9, 1)
                 + bytes([tsresol]) + b"\x00" * 3 + struct.pack("<HH", 0, 0))
    blocks = [shb, idb]
    for n, (from_client, flags, payload, seq) in enumerate(packets):
        ports = (40000, 4059) if from_client else (4059, 40000)
        data = raw_ip_tcp(*ports, seq, flags, payload)
        ts = (base + n) & (2**64 - 1)
        blocks.append(_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data),
                                            len(data)) + data))
    path = tmp_path / "structured.pcapng"
    path.write_bytes(b"".join(blocks))
    _check(path)


def test_a_pcap_record_longer_than_the_snapshot_is_named(tmp_path: Path) -> None:
    from tests.helpers.damage import CAPTURES, plain_pcap

    raw = bytearray(plain_pcap(CAPTURES / "healthy.pcapng"))
    first_len = struct.unpack_from("<I", raw, 24 + 8)[0]
    second = 24 + 16 + first_len
    struct.pack_into("<I", raw, second + 8, 0x7FFFFFFF)  # its captured length
    path = tmp_path / "long.pcap"
    path.write_bytes(bytes(raw))
    got = run_cli(["open", str(path)])
    assert got.code == 2 and f"at byte {second}: packet record of" in got.stderr
    assert str(path) in got.stderr
