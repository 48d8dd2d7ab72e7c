"""A password never leaves in clear, whatever the HDLC segmentation of the AARQ (issue 10 item 1).

When the meter's max information field is small or the password long, the AARQ goes out in
segments and the password may straddle two (or many) of them: no single segment decodes as an
AARQ. Every output is checked: the saved session, ``--json``, the ``--jsonl`` stream as printed
live, md/html/json reports, the pcapng, and ``decode`` of the segments pasted back.
"""

from __future__ import annotations

import base64
import io
import json
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.decode import Chunk, decode_chunks
from dlmsdoctor.codec.secrets import SecretTracker, aarq_secret_ranges
from dlmsdoctor.config import Credential
from dlmsdoctor.diagnosis import diagnose
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.events import (
    CloseHow,
    ConnectionClosed,
    ConnectionOpened,
    FrameReceived,
    FrameSent,
    StepFinished,
    StepStarted,
    StepStatus,
)
from dlmsdoctor.output.capture import build_capture
from dlmsdoctor.output.decode_json import decode_document
from dlmsdoctor.output.probe_json import event_line, probe_document
from dlmsdoctor.output.report import render_report
from dlmsdoctor.probes import apdus
from dlmsdoctor.probes.base import Facts
from dlmsdoctor.recorder import Recorder
from dlmsdoctor.session import Session

SERVER = hd.ServerAddress(1, 1, 2)
# printable, and no character of the hex/base64 alphabets alone: a leak is then unmistakable
ALPHABET = string.ascii_letters + string.digits + "!#%&()*+,-./:;<=>?@[]^_{|}~"


def segment(payload: bytes, cuts: list[int]) -> list[bytes]:
    """HDLC I-frames carrying ``payload`` (LLC + APDU) cut at ``cuts``."""
    points = sorted({c for c in cuts if 0 < c < len(payload)})
    parts = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)], strict=True)]
    return [hd.build_i(SERVER, 32, to_server=True, ns=n % 8, nr=0, info=part,
                       segmented=n < len(parts) - 1, llc=False)
            for n, part in enumerate(parts)]


def run_outputs(frames: list[bytes], password: str, echo: bool = False) -> dict[str, bytes]:
    """Feed the segments as a run would, then render every output."""
    cred = Credential("reader", 32, "low", password=password)
    rec = Recorder(ProbeOptions("127.0.0.1", 4061, credentials=(cred,)))
    live: list[str] = []
    t = 0.0

    def add(event: object) -> None:
        shown = rec.add(event)  # type: ignore[arg-type]
        live.append(json.dumps(event_line(shown), default=str))

    add(StepStarted("assoc.login.reader", "Login", "association", t))
    add(ConnectionOpened(1, "127.0.0.1", 4061, t, 0.001, 50000))
    for frame in frames:
        t += 0.01
        add(FrameSent(1, "assoc.login.reader", t, frame))
        if echo:
            add(FrameReceived(1, "assoc.login.reader", t + 0.001, frame))
        if frame[1] & 0x08:  # segmented: the meter acknowledges with RR
            add(FrameReceived(1, "assoc.login.reader", t + 0.005,
                              hd.build_rr(SERVER, 32, to_server=False, nr=0)))
    add(StepFinished("assoc.login.reader", StepStatus.FAILED, "no answer", t + 1))
    add(ConnectionClosed(1, t + 1.1, CloseHow.LOCAL, False))
    session = rec.finish(Facts(), t + 1.2)
    session.diagnosis = diagnose(session)
    out = {
        "session": session.dumps().encode(),
        "json": json.dumps(probe_document(session), default=str).encode(),
        "jsonl": "\n".join(live).encode(),
        "report.md": render_report(session, "md").encode(),
        "report.html": render_report(session, "html", "es").encode(),
        "report.json": render_report(session, "json").encode(),
        "pcapng": build_capture(session)[0],
        "reloaded": Session.loads(session.dumps()).dumps().encode(),
    }
    pasted = "\n".join(f.hex(" ") for f in frames)
    for direction in (None, "tx"):
        doc = decode_document(decode_chunks([Chunk(bytes.fromhex(line), direction)
                                             for line in pasted.splitlines()]))
        out[f"decode-{direction}"] = json.dumps(doc).encode()
    out["decode-view"] = _decode_view(frames)
    return out


def _decode_view(frames: list[bytes]) -> bytes:
    from rich.console import Console

    from dlmsdoctor.codec.decode import iter_decode
    from dlmsdoctor.output.decode_view import frame_lines

    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    for fd in iter_decode([Chunk(f, "tx") for f in frames]):
        for line in frame_lines(fd):
            console.print(line)
    return buf.getvalue().encode()


def _spellings(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), secret.hex().upper().encode(),
            secret.hex(" ").encode(), secret.hex(" ").upper().encode()]


def _count(data: bytes, secret: bytes) -> int:
    """How often ``secret`` shows in ``data``: in clear, in hex (any case, spaced or not) and
    in base64 (each of the three alignments, inside any base64-looking run)."""
    total = sum(data.count(n) for n in _spellings(secret))
    for run in re.findall(rb"[A-Za-z0-9+/]{8,}={0,2}", data):
        for skip in range(4):
            chunk = run[skip:]
            chunk = chunk[: len(chunk) // 4 * 4]
            try:
                total += base64.b64decode(chunk).count(secret)
            except ValueError:
                continue
    return total


def leaks(outputs: dict[str, bytes], secret: bytes,
          baseline: dict[str, bytes] | None = None) -> list[str]:
    """The outputs that hold ``secret`` more often than the ``baseline`` outputs (the same
    run with another password): a short password such as "0000" shows in timestamps anyway."""
    return [name for name, data in outputs.items()
            if _count(data, secret) > (_count(baseline[name], secret) if baseline else 0)]


def masked_everywhere(frames: list[bytes], stored: list[bytes], password: bytes) -> bool:
    """Every byte of the password (known positions) is '*' in the recorded frames, whatever
    its length (a short password cannot be searched for in text)."""
    joined_sent = b"".join(_info(f) for f in frames)
    joined_kept = b"".join(_info(f) for f in stored)
    start = joined_sent.find(b"\xac")  # calling-authentication-value
    ranges, _ = aarq_secret_ranges(joined_sent[3:])
    assert ranges, "the AARQ has a password"
    lo, hi = ranges[0][0] + 3, ranges[0][1] + 3
    assert joined_sent[lo:hi] == password and start < lo
    return joined_kept[lo:hi] == b"*" * len(password)


def _info(frame: bytes) -> bytes:
    fields = hd.parse_hdlc(frame, 0, "tx").fields
    info, length = fields["info_offset"], fields["info_length"]
    assert isinstance(info, int) and isinstance(length, int)
    return frame[info : info + length]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=st.text(ALPHABET, min_size=1, max_size=80), data=st.data())
def test_no_output_holds_a_split_password(password: str, data: st.DataObject) -> None:
    payload = hd.LLC_TO_SERVER + apdus.build_aarq(password.encode())
    cuts = data.draw(st.lists(st.integers(1, len(payload) - 1), max_size=6), label="cuts")
    if data.draw(st.booleans(), label="fixed max info"):
        size = data.draw(st.integers(1, len(payload)), label="max_info")
        cuts = list(range(size, len(payload), size))
    frames = segment(payload, cuts)
    echo = data.draw(st.booleans(), label="echo")
    outputs = run_outputs(frames, password, echo=echo)
    stored = Session.loads(outputs["session"].decode()).frames
    assert masked_everywhere(frames, [f.data for f in stored if f.direction.value == "tx"],
                             password.encode())
    if len(password) >= 3:
        other = segment(hd.LLC_TO_SERVER + apdus.build_aarq(b"$" * len(password)), cuts)
        baseline = run_outputs(other, "$" * len(password), echo=echo)
        assert leaks(outputs, password.encode(), baseline) == []


@pytest.mark.slow
def test_every_max_info_and_every_single_cut() -> None:
    """Exhaustive for one 70-character password: every uniform segment size, and every one-cut
    split (the issue's reproduction: max info 32, and a long password)."""
    password = "Zq7" * 23 + "X"
    secret = password.encode()
    payload = hd.LLC_TO_SERVER + apdus.build_aarq(secret)
    tracker_cases = [list(range(s, len(payload), s)) for s in range(1, len(payload) + 1)]
    tracker_cases += [[c] for c in range(1, len(payload))]
    for cuts in tracker_cases:
        frames = segment(payload, cuts)
        rec = Recorder(ProbeOptions("127.0.0.1", 4061))  # no scrubbing by value: by meaning
        shown = [rec.add(FrameSent(1, "s", 0.0, f)) for f in frames]
        kept = b"".join(_info(e.data) for e in shown)  # type: ignore[attr-defined]
        assert secret not in kept and secret not in b"".join(f.data for f in rec.session.frames)
        assert kept.count(b"*") == len(secret), cuts
        tracker = SecretTracker()
        hidden = [tracker.offsets(hd.parse_hdlc(f, 0, "tx")) for f in frames]
        assert sum(len(h) for h in hidden) == len(secret)


def test_issue_reproduction_max_info_32() -> None:
    """The issue's run: max info 32, password 87654321 (no scrubbing by value: the recorder
    must find it by meaning)."""
    payload = hd.LLC_TO_SERVER + apdus.build_aarq(b"87654321")
    frames = segment(payload, list(range(32, len(payload), 32)))
    assert b"87654321" not in b"".join(frames[:-1]) or len(frames) > 1
    outputs = run_outputs(frames, "")
    assert leaks(outputs, b"87654321") == []
    assert b"87654321" in b"".join(frames)  # the test does send it


def test_masked_segments_still_check() -> None:
    """Masked segments keep a right FCS (a vendor's Wireshark shows no false error)."""
    payload = hd.LLC_TO_SERVER + apdus.build_aarq(b"a-long-password-" * 4)
    frames = segment(payload, list(range(32, len(payload), 32)))
    rec = Recorder(ProbeOptions("127.0.0.1", 4061))
    for f in frames:
        rec.add(FrameSent(1, "s", 0.0, f))
    for record in rec.session.frames:
        parsed = hd.parse_hdlc(record.data, 0, "tx")
        assert not [x.code for x in parsed.findings if "cs.mismatch" in x.code]
    before = sum(f.count(b"*") for f in frames)
    assert sum(f.data.count(b"*") for f in rec.session.frames) - before == 64


async def test_live_events_and_session_of_a_real_run_hold_no_password() -> None:
    """Against the simulated meter with max info 32 (the issue's reproduction): the events a
    face prints live (``--jsonl``, the TUI) are masked too, not only the saved session."""
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.engine import run_probe
    from dlmsdoctor.ledger import MemoryLedger
    from dlmsdoctor.sim.meter import SimulatedMeter
    from dlmsdoctor.sim.profile import load_profile

    profile = load_profile("default").with_changes(max_info_rx=32)
    seen: list[bytes] = []
    async with SimulatedMeter(profile) as meter:
        options = ProbeOptions("127.0.0.1", meter.port, icmp=False, timeout=0.5,
                               banner_window=0.05, release_timeout=0.5,
                               credentials=(parse_credential("r=32:low:87654321"),))
        session = await run_probe(
            options, ledger=MemoryLedger(),
            on_event=lambda e: seen.append(json.dumps(event_line(e)).encode()))
    sent = [f for f in session.frames if f.direction.value == "tx" and f.data[1] & 0x08]
    assert sent, "the AARQ went out in segments"
    assert b"87654321" not in b"".join(f.data for f in session.frames)
    assert leaks({"jsonl": b"\n".join(seen), "session": session.dumps().encode()},
                 b"87654321") == []
    assert any(e.get("outcome") == "accepted" and e.get("client_sap") == 32
               for e in meter.events if e["event"] == "login")
