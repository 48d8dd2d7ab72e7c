"""A capture from tcpdump or Wireshark of the same bytes gets the same verdict as the session.

Each sample in ``captures/`` is turned into a foreign capture (no dlmsdoctor comments) two ways:
by tshark (pcap, and pcap -> pcapng), as users have them, and without tshark by writing a plain
pcap of the same packets here, so the check runs on machines without Wireshark too.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dlmsdoctor.events import StepStatus
from dlmsdoctor.output.capture import write_capture
from dlmsdoctor.output.capture_read import load_and_diagnose, read_raw
from dlmsdoctor.session import Session

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p.name.removesuffix(".session.json")
                 for p in (ROOT / "captures").glob("*.session.json"))
TSHARK = shutil.which("tshark")


def _verdict(session: Session) -> tuple[str, str | None]:
    assert session.diagnosis is not None
    top = session.diagnosis.causes[0].code if session.diagnosis.causes else None
    return session.diagnosis.status, top


def _plain_pcap(pcapng: Path, out: Path) -> Path:
    """The packets of a dlmsdoctor pcapng as a classic pcap: what tcpdump writes, no comments."""
    raw = read_raw(pcapng)
    linktypes = {p.linktype for p in raw.packets}
    assert len(linktypes) == 1
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktypes.pop())]
    for p in raw.packets:
        chunks.append(struct.pack("<IIII", p.ts_us // 1_000_000, p.ts_us % 1_000_000,
                                  len(p.data), len(p.data)) + p.data)
    out.write_bytes(b"".join(chunks))
    return out


def test_every_sample_is_covered() -> None:
    assert {"healthy", "wrong-address", "wrong-password", "wrapper-only", "dm",
            "busy-bridge"} <= set(SAMPLES)


@pytest.mark.parametrize("name", SAMPLES)
def test_plain_pcap_gets_the_sessions_verdict(name: str, tmp_path: Path) -> None:
    original = load_and_diagnose(ROOT / "captures" / f"{name}.session.json")
    pcap = _plain_pcap(ROOT / "captures" / f"{name}.pcapng", tmp_path / f"{name}.pcap")
    foreign = load_and_diagnose(pcap)
    assert foreign.kind == "capture" and foreign.tool_version == "(foreign capture)"
    assert _verdict(foreign) == _verdict(original)


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt install tshark)")
@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_tshark_conversions_get_the_sessions_verdict(name: str, fmt: str, tmp_path: Path) -> None:
    assert TSHARK is not None
    source = ROOT / "captures" / f"{name}.pcapng"
    pcap = tmp_path / f"{name}.pcap"
    subprocess.run([TSHARK, "-r", str(source), "-F", "pcap", "-w", str(pcap)], check=True,
                   capture_output=True, timeout=60)
    path = pcap
    if fmt == "pcapng":  # Wireshark's own pcapng: our comments are gone with the pcap step
        path = tmp_path / f"{name}.wireshark.pcapng"
        subprocess.run([TSHARK, "-r", str(pcap), "-F", "pcapng", "-w", str(path)], check=True,
                       capture_output=True, timeout=60)
    foreign = load_and_diagnose(path)
    assert foreign.tool_version == "(foreign capture)"
    assert _verdict(foreign) == _verdict(load_and_diagnose(
        ROOT / "captures" / f"{name}.session.json"))


def test_rungs_rebuilt_from_a_refused_login(tmp_path: Path) -> None:
    pcap = _plain_pcap(ROOT / "captures" / "wrong-password.pcapng", tmp_path / "w.pcap")
    session = load_and_diagnose(pcap)
    steps = {s.id: s for s in session.steps}
    assert steps["assoc.public"].status is StepStatus.OK
    assert steps["cosem.identity"].status is StepStatus.OK
    # a capture knows no credential set names: the login is its client SAP
    assert steps["assoc.client.1"].status is StepStatus.FAILED
    assert session.identity["serial_number"] == "12345678"
    rejected = [x for x in session.logins if x.outcome == "rejected"]
    assert [(x.client_sap, x.mechanism, x.diagnostic) for x in rejected] == [
        (1, "low", "authentication-failure")]
    refusal = next(pf for pf in session.findings if pf.code == "assoc.auth_failure")
    aare = session.frames[refusal.frames[-1]]
    assert aare.direction.value == "rx" and aare.step_id == "assoc.client.1"
    assert all(f.step_id for f in session.frames)  # every frame belongs to a rung
    assert [x.credential for x in rejected] == [""]
    assert session.diagnosis is not None
    top = session.diagnosis.causes[0]
    assert top.code == "auth.wrong_password"
    assert "the login of client SAP 1 (low)" in top.title
    assert "credential set" not in top.title and "client-1" not in top.title
    assert [ev.frame for ev in top.evidence] == [refusal.frames[-1]]  # the meter's AARE
    from dlmsdoctor.output.report import render_report

    md = render_report(session, "md", "en")
    assert "The capture w.pcap shows a client talking to" in md
    assert "dlmsdoctor tested" not in md and "TX = sent by dlmsdoctor" not in md
    assert "Login of client SAP 1" in md and "client-1" not in md
    es = render_report(session, "md", "es")
    assert "la autenticación del SAP de cliente 1" in es
    assert "Autenticación del SAP de cliente 1" in es


def test_address_found_and_profile_from_a_capture(tmp_path: Path) -> None:
    pcap = _plain_pcap(ROOT / "captures" / "wrong-address.pcapng", tmp_path / "a.pcap")
    session = load_and_diagnose(pcap)
    found = next(pf for pf in session.findings if pf.code == "address.found")
    assert (found.data["logical"], found.data["physical"], found.data["address_size"]) == (
        1, 6678, 4)
    assert session.diagnosis is not None and session.diagnosis.profile is not None
    assert session.diagnosis.profile.server_physical == 6678
    assert "No working connection" not in session.diagnosis.headline
    # silence at 1/1, then the discovery found 1/6678: the probe's settling applies (one
    # mechanism, diagnosis/steps.py), the rung the frames show stays recorded
    snrm = next(s for s in session.steps if s.id == "hdlc.snrm")
    assert snrm.status is StepStatus.RECOVERED
    assert snrm.details["recorded_status"] == "failed"
    assert snrm.details["recovered_by"] == "address.discover"
    from tests.helpers.damage import run_cli

    report = run_cli(["report", str(pcap)])  # what the issue saw: "Status: NOT WORKING"
    assert report.code == 0 and "WORKS, WITH PROBLEMS" in report.stdout
    assert "NOT WORKING" not in report.stdout and "No working connection" not in report.stdout


def test_written_pcapng_roundtrip_is_not_rebuilt(tmp_path: Path) -> None:
    """A dlmsdoctor pcapng keeps its own steps: nothing is inferred over them."""
    original = Session.loads((ROOT / "captures" / "healthy.session.json").read_text())
    path = tmp_path / "own.pcapng"
    write_capture(original, path)
    session = load_and_diagnose(path)
    assert session.kind == original.kind
    assert [s.id for s in session.steps] == [s.id for s in original.steps]


async def test_tui_open_diagnoses_a_foreign_capture(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    from textual.widgets import Static

    from dlmsdoctor.app import create_app

    pcap = _plain_pcap(ROOT / "captures" / "wrong-address.pcapng", tmp_path / "a.pcap")
    app = create_app(sessions_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_session_file(pcap)  # what ctrl+o calls with the path typed in its dialog
        await pilot.pause()
        assert app.session is not None and app.session.diagnosis is not None
        headline = str(app.screen.query_one("#diagnosis-headline", Static).render())
        assert "No diagnosis yet" not in headline
        assert "1/6678" in headline


sim = pytest.importorskip("dlmsdoctor.sim.meter")

FAST = {"icmp": False, "timeout": 0.4, "banner_window": 0.1, "busy_retry_wait": 0.1,
        "release_timeout": 0.5}


@pytest.mark.parametrize(("faults", "max_info", "creds"), [
    ((), 32, ("mgmt=1:low:99999999",)),  # every AARQ/AARE and GET answer segmented
    (("wrong-address",), 128, ()),
    (("wrapper-only=close",), 128, ("mgmt=1:low:00000000",)),
    (("dm-on-snrm",), 128, ()),
])
async def test_a_live_run_and_its_tcpdump_view_agree(faults: tuple[str, ...], max_info: int,
                                                     creds: tuple[str, ...],
                                                     tmp_path: Path) -> None:
    """Probe the simulated meter, write the pcapng, strip it to a plain pcap (what tcpdump
    would have recorded of the same bytes): the capture's verdict is the run's."""
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger
    from dlmsdoctor.sim.profile import load_profile

    profile = load_profile("default").with_changes(max_info_tx=max_info, max_info_rx=max_info)
    async with sim.SimulatedMeter(profile, faults=list(faults)) as meter:
        options = ProbeOptions("127.0.0.1", meter.port,
                               credentials=tuple(parse_credential(c) for c in creds),
                               **FAST)  # type: ignore[arg-type]
        session = await run_probe(options, ledger=MemoryLedger())
    session.diagnosis = diagnose(session)
    own = tmp_path / "run.pcapng"
    write_capture(session, own)
    foreign = load_and_diagnose(_plain_pcap(own, tmp_path / "run.pcap"))
    assert _verdict(foreign) == _verdict(session)
    assert foreign.identity.get("serial_number") == session.identity.get("serial_number")
    assert [x.outcome for x in foreign.logins] == [x.outcome for x in session.logins]


def _demo_scenarios() -> list[Any]:
    from dlmsdoctor.cli.demo_cmd import SCENARIOS

    # lockout: its verdict rests on the login ledger of two earlier runs, whose bytes are not
    # in the shown run's capture (a capture of all three would hold them)
    return [pytest.param(name, marks=[pytest.mark.slow] if name == "slow" else [])
            for name, sc in SCENARIOS.items() if not sc.before]


@pytest.mark.parametrize("name", _demo_scenarios())
async def test_every_demo_scenario_and_its_tcpdump_view_agree(name: str, tmp_path: Path) -> None:
    from dlmsdoctor.cli.demo_cmd import DEMO_TIMEOUT, SCENARIOS
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger

    sc = SCENARIOS[name]
    async with sim.SimulatedMeter(sc.profile, faults=list(sc.faults)) as meter:
        options = ProbeOptions(
            "127.0.0.1", meter.port, icmp=False, timeout=DEMO_TIMEOUT, busy_retry_wait=0.1,
            serial_number=sc.serial_number,
            credentials=tuple(parse_credential(c) for c in sc.creds), **sc.options)
        session = await run_probe(options, ledger=MemoryLedger())
    session.diagnosis = diagnose(session)
    own = tmp_path / "run.pcapng"
    write_capture(session, own)
    foreign = load_and_diagnose(_plain_pcap(own, tmp_path / "run.pcap"))
    assert _verdict(foreign) == _verdict(session)


async def test_a_refused_connection_reads_as_refused(tmp_path: Path) -> None:
    """SYN answered by RST: the rules' tcp.refused, from the capture as from the run."""
    import socket

    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger

    with socket.socket() as probe_port:  # a loopback port nobody listens on
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    options = ProbeOptions("127.0.0.1", port, **FAST)  # type: ignore[arg-type]
    session = await run_probe(options, ledger=MemoryLedger())
    session.diagnosis = diagnose(session)
    own = tmp_path / "run.pcapng"
    write_capture(session, own)
    foreign = load_and_diagnose(_plain_pcap(own, tmp_path / "run.pcap"), port)
    assert _verdict(session)[1] == "tcp.refused"
    assert _verdict(foreign) == _verdict(session)
    assert all(c.opened_at is None for c in foreign.connections)


def test_unanswered_syns_read_as_a_connect_timeout(tmp_path: Path) -> None:
    from tests.helpers.damage import pcap_of, raw_ip_tcp

    start = 1_700_000_000_000_000
    syns = [(start + 3_000_000 * i, raw_ip_tcp(40000 + i, 4059, 100, 0x02, b""))
            for i in range(3)]
    path = tmp_path / "syn.pcap"
    path.write_bytes(pcap_of(syns))
    session = load_and_diagnose(path)
    assert _verdict(session) == ("failed", "tcp.timeout")
    assert [c.failed for c in session.connections] == ["timeout"] * 3


async def test_a_capture_of_the_pollers_runs_and_ours_names_the_lockout(tmp_path: Path) -> None:
    """tcpdump running while the site's poller tried an outdated password twice and then the
    probe came: the capture holds the failed logins the ledger held, and reads as a lockout."""
    from dlmsdoctor.cli.demo_cmd import DEMO_TIMEOUT, SCENARIOS
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger
    from tests.helpers.damage import pcap_of

    sc = SCENARIOS["lockout"]
    ledger = MemoryLedger()
    packets: list[tuple[int, bytes]] = []
    async with sim.SimulatedMeter(sc.profile, faults=list(sc.faults)) as meter:
        for n, cred in enumerate([*sc.before, *sc.creds]):
            options = ProbeOptions("127.0.0.1", meter.port, icmp=False, timeout=DEMO_TIMEOUT,
                                   busy_retry_wait=0.1, credentials=(parse_credential(cred),))
            session = await run_probe(options, ledger=ledger)
            session.diagnosis = diagnose(session)
            write_capture(session, tmp_path / f"{n}.pcapng")
            packets += [(p.ts_us, p.data) for p in read_raw(tmp_path / f"{n}.pcapng").packets]
    assert _verdict(session)[1] == "auth.lockout"
    path = tmp_path / "all.pcap"
    path.write_bytes(pcap_of(sorted(packets, key=lambda p: p[0])))
    foreign = load_and_diagnose(path)
    assert _verdict(foreign)[1] == "auth.lockout"
    assert [x.outcome for x in foreign.logins if x.mechanism == "low"] == ["rejected"] * 2
