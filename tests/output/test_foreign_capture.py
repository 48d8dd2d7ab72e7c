"""A capture dlmsdoctor did not write shows another client, and is judged as the tap judges a
relayed poller: the tap's findings and rules, never the probe's ("our AARQ", the login budget,
the ladder's rungs), every text naming the poller or the client, in English and Spanish.

Each sample in ``captures/`` is turned into a foreign capture (no dlmsdoctor comments) two ways:
by tshark (pcap, and pcap -> pcapng), as users have them, and without tshark by writing a plain
pcap of the same packets here, so the check runs on machines without Wireshark too. A
dlmsdoctor pcapng of its own probe run keeps the probe's steps and rules.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dlmsdoctor.output.capture import write_capture
from dlmsdoctor.output.capture_read import load_and_diagnose, read_raw
from dlmsdoctor.session import Session

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p.name.removesuffix(".session.json")
                 for p in (ROOT / "captures").glob("*.session.json"))
TSHARK = shutil.which("tshark")
# What the poller in each sample's capture shows (the probe of the run is, here, "the poller").
EXPECTED = {
    "healthy": ("ok", None),
    "wrong-address": ("failed", "tap.poller.no_answer"),
    "wrong-password": ("failed", "tap.poller.login_failed"),
    "wrapper-only": ("failed", "tap.meter.closed_on_request"),
    "dm": ("degraded", "tap.meter.refused"),
    "busy-bridge": ("failed", "tap.bridge.busy"),
    "seed-story": ("failed", "tap.poller.malformed"),
    "seed-story-ser2net": ("failed", "tap.bridge.busy"),
}
# dlmsdoctor speaking of itself as the client: never in a capture of someone else's.
SAID_BY_US = re.compile(
    r"\b(we|our|ours|us|ourselves)\b|dlmsdoctor (tested|sent|probed)|"
    r"(recorded|sent|closed|tested) by dlmsdoctor|nosotros|nuestr\w*|dlmsdoctor probó|"
    r"(registrad|enviad|cerrad)[oa]s? por dlmsdoctor", re.IGNORECASE)


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_COLOR", "1")


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


def session_texts(session: Session) -> list[str]:
    """Every text of a session a face shows: verdict, causes, findings, frames, connections."""
    texts: list[str] = [f.message for f in session.findings]
    texts += [s.summary for s in session.steps] + [s.title for s in session.steps]
    texts += [c.note for c in session.connections]
    for frame in session.frames:
        texts.append(frame.summary)
        texts += [str(f.get("message", "")) for f in frame.findings]
    diagnosis = session.diagnosis
    if diagnosis is not None:
        texts.append(diagnosis.headline)
        for cause in diagnosis.causes:
            texts += [cause.title, cause.explanation]
            texts += [a.text for a in cause.actions] + [e.note for e in cause.evidence]
    return [t for t in texts if t]


def said_by_us(texts: list[str] | str) -> list[str]:
    """The places where dlmsdoctor speaks of itself as the client ("our AARQ", "we sent")."""
    found = []
    for text in [texts] if isinstance(texts, str) else texts:
        for match in SAID_BY_US.finditer(text):
            found.append(text[max(0, match.start() - 60) : match.end() + 40])
    return found


def _as_poller(session: Session) -> None:
    """The invariants of a foreign capture: the tap's reading, no probe machinery."""
    assert session.kind == "capture" and session.tool_version == "(foreign capture)"
    assert session.steps == [] and session.logins == []
    assert isinstance(session.settings.get("tap"), dict)
    assert session.diagnosis is not None
    assert all(c.code.startswith("tap.") for c in session.diagnosis.causes)
    assert all(f.code.startswith(("tap.", "capture.")) for f in session.findings)
    assert said_by_us(session_texts(session)) == []


def test_every_sample_is_covered() -> None:
    assert set(EXPECTED) == set(SAMPLES)


@pytest.mark.parametrize("name", SAMPLES)
def test_plain_pcap_is_judged_as_a_poller(name: str, tmp_path: Path) -> None:
    pcap = _plain_pcap(ROOT / "captures" / f"{name}.pcapng", tmp_path / f"{name}.pcap")
    foreign = load_and_diagnose(pcap)
    _as_poller(foreign)
    assert _verdict(foreign) == EXPECTED[name]
    # the same bytes through the probe's eyes (its own pcapng): the probe's rules, its steps
    own = load_and_diagnose(ROOT / "captures" / f"{name}.pcapng")
    assert own.kind == "probe" and own.steps
    assert own.diagnosis is not None
    assert not any(c.code.startswith("tap.") for c in own.diagnosis.causes)


def _settings(session: Session) -> tuple[object, ...] | None:
    profile = session.diagnosis.profile if session.diagnosis is not None else None
    if profile is None:
        return None
    return (profile.framing, profile.server_logical, profile.server_physical,
            profile.address_size, profile.client_sap, profile.authentication,
            profile.max_pdu_size)


@pytest.mark.parametrize("name", SAMPLES)
def test_a_capture_of_a_working_client_gives_the_settings_the_probe_found(
        name: str, tmp_path: Path) -> None:
    """What worked is part of the verdict: the same bytes read as another client's traffic
    give the working profile the probe's own run gave (none where nothing was accepted)."""
    pcap = _plain_pcap(ROOT / "captures" / f"{name}.pcapng", tmp_path / f"{name}.pcap")
    foreign = load_and_diagnose(pcap)
    own = load_and_diagnose(ROOT / "captures" / f"{name}.pcapng")
    assert _settings(foreign) == _settings(own)
    if _settings(own) is not None:
        report = _cli("open", str(pcap), "--report", "-", "--format", "md")
        assert "## Working connection profile" in report


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt install tshark)")
@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_tshark_conversions_are_judged_as_a_poller(name: str, fmt: str, tmp_path: Path) -> None:
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
    _as_poller(foreign)
    assert _verdict(foreign) == EXPECTED[name]


def _cli(*args: str) -> str:
    from dlmsdoctor.cli.main import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@pytest.mark.parametrize("name", ["wrong-password", "seed-story", "busy-bridge", "healthy"])
def test_open_and_every_report_name_the_poller_never_us(name: str, tmp_path: Path) -> None:
    pcap = _plain_pcap(ROOT / "captures" / f"{name}.pcapng", tmp_path / f"{name}.pcap")
    outputs = {"open": _cli("open", str(pcap))}
    for lang in ("en", "es"):
        for fmt in ("md", "html", "json"):
            outputs[f"{fmt}-{lang}"] = _cli("report", str(pcap), "--format", fmt, "--lang", lang)
    for what, text in outputs.items():
        assert said_by_us(text) == [], (what, said_by_us(text))
    assert f"The capture {name}.pcap shows a client talking to" in outputs["md-en"]
    assert "TX = sent by the client in the capture" in outputs["md-en"]
    assert "The meter's side: answer times and refusals, service by service" in outputs["md-en"]
    assert f"La captura {name}.pcap muestra a un cliente" in outputs["md-es"]
    assert "conn 1  poller " in outputs["open"]
    status, top = EXPECTED[name]
    assert f"status  {status}: " in outputs["open"]
    if top is not None:
        assert "cause 1  " in outputs["open"] and top in outputs["open"]


def test_a_refused_login_is_the_pollers_with_the_meters_aare(tmp_path: Path) -> None:
    pcap = _plain_pcap(ROOT / "captures" / "wrong-password.pcapng", tmp_path / "w.pcap")
    session = load_and_diagnose(pcap)
    failed = next(f for f in session.findings if f.code == "tap.poller.login_failed")
    assert failed.data["client_sap"] == 1 and failed.data["diagnostic"] == "authentication-failure"
    aarq, aare = (session.frames[i] for i in failed.frames[:2])
    assert aarq.direction.value == "tx" and "AARQ" in aarq.summary
    assert aare.direction.value == "rx" and "AARE" in aare.summary and aare.answers == aarq.index
    assert session.diagnosis is not None
    assert session.diagnosis.headline == "The meter refuses your poller's login"
    assert session.settings["tap"]["logins"] == {"accepted": 1, "failed": 1}
    # what the poller read of the meter (its public association's GETs)
    assert session.identity["serial_number"] == "12345678"
    assert session.identity["manufacturer"] == "DLD"
    from dlmsdoctor.output.report import render_report

    es = render_report(session, "md", "es")
    assert "El medidor rechaza la autenticación de su sistema de lectura" in es
    assert "1 autenticación(es) fallida(s) en los últimos 15 min (SAP de cliente 1" in es


def test_a_poller_trying_addresses_is_told_where_the_meter_answers(tmp_path: Path) -> None:
    """SNRMs to 1/1 and 1/5678 unanswered, then the UA of 1/6678: that UA answers its own
    SNRM, not the first one sent (no "late answer", no stale bytes)."""
    pcap = _plain_pcap(ROOT / "captures" / "wrong-address.pcapng", tmp_path / "a.pcap")
    session = load_and_diagnose(pcap)
    codes = {f.code for f in session.findings}
    assert "tap.poller.timeout_too_short" not in codes and "tap.meter.stale_bytes" not in codes
    silent = next(f for f in session.findings if f.code == "tap.poller.no_answer"
                  and f.data["server"] == "server 1/1 (2-byte)")
    assert "The meter did answer at server 1/6678 (4-byte)." in silent.message
    ua = next(f for f in session.frames if f.summary.startswith("UA server 1/6678"))
    assert "SNRM client 16 -> server 1/6678" in session.frames[ua.answers or 0].summary
    from tests.helpers.damage import run_cli

    report = run_cli(["report", str(pcap)])
    assert report.code == 0 and "Your poller's requests get no answer" in report.stdout


def test_a_dlmsdoctor_pcapng_keeps_its_probe_reading(tmp_path: Path) -> None:
    """A dlmsdoctor pcapng of its own run keeps its own steps and the probe's rules."""
    original = Session.loads((ROOT / "captures" / "healthy.session.json").read_text())
    path = tmp_path / "own.pcapng"
    write_capture(original, path)
    session = load_and_diagnose(path)
    assert session.kind == original.kind == "probe"
    assert [s.id for s in session.steps] == [s.id for s in original.steps]


def test_a_foreign_session_saved_by_an_older_dlmsdoctor_is_read_again(tmp_path: Path) -> None:
    """A capture session saved with the probe's rungs (before this reading) is judged by the
    tap's rules when opened: its frames are read again as the poller's."""
    pcap = _plain_pcap(ROOT / "captures" / "wrong-password.pcapng", tmp_path / "w.pcap")
    session = load_and_diagnose(pcap)
    doc = session.to_json()
    doc["settings"].pop("tap")
    doc["findings"], doc["diagnosis"] = [], None
    doc["steps"] = [{"id": "assoc.client.1", "title": "Login of client SAP 1 (low)",
                     "layer": "association", "status": "failed", "started": 0.0,
                     "finished": 0.1, "summary": "rejected", "details": {}}]
    old = tmp_path / "old.json"
    old.write_text(Session.from_json(doc).dumps(), encoding="utf-8")
    again = load_and_diagnose(old)
    _as_poller(again)
    assert _verdict(again) == EXPECTED["wrong-password"]


async def test_tui_open_diagnoses_a_foreign_capture(tmp_path: Path) -> None:
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
        assert "Your poller's requests get no answer" in headline


sim = pytest.importorskip("dlmsdoctor.sim.meter")

FAST = {"icmp": False, "timeout": 0.4, "banner_window": 0.1, "busy_retry_wait": 0.1,
        "release_timeout": 0.5}


async def _probe_and_strip(options: Any, tmp_path: Path, port: int | None = None
                           ) -> tuple[Session, Session]:
    """A probe run, its pcapng, and that pcapng stripped to what tcpdump would have kept."""
    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.engine import run_probe
    from dlmsdoctor.ledger import MemoryLedger

    session = await run_probe(options, ledger=MemoryLedger())
    session.diagnosis = diagnose(session)
    own = tmp_path / "run.pcapng"
    write_capture(session, own)
    return session, load_and_diagnose(_plain_pcap(own, tmp_path / "run.pcap"), port)


@pytest.mark.parametrize(("faults", "max_info", "creds", "expected"), [
    # every AARQ/AARE and GET answer segmented; the wrong password is the poller's
    ((), 32, ("mgmt=1:low:99999999",), "tap.poller.login_failed"),
    (("wrong-address",), 128, (), None),  # the default profile answers at 1/1 all the same
    (("wrapper-only=close",), 128, ("mgmt=1:low:00000000",), "tap.meter.closed_on_request"),
    (("dm-on-snrm",), 128, (), "tap.meter.refused"),
])
async def test_a_live_run_seen_by_tcpdump_is_a_pollers_traffic(
        faults: tuple[str, ...], max_info: int, creds: tuple[str, ...], expected: str | None,
        tmp_path: Path) -> None:
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.engine import ProbeOptions
    from dlmsdoctor.sim.profile import load_profile

    profile = load_profile("default").with_changes(max_info_tx=max_info, max_info_rx=max_info)
    async with sim.SimulatedMeter(profile, faults=list(faults)) as meter:
        options = ProbeOptions("127.0.0.1", meter.port,
                               credentials=tuple(parse_credential(c) for c in creds),
                               **FAST)  # type: ignore[arg-type]
        _, foreign = await _probe_and_strip(options, tmp_path)
    _as_poller(foreign)
    if expected is None:
        assert _verdict(foreign) == ("ok", None)
    else:
        assert _verdict(foreign)[1] == expected
    # the meter's answers are timed and matched, segments joined
    times = foreign.settings["tap"]["answer_times"]
    if not faults:
        assert times["AARQ"]["count"] >= 1 and times["GET"]["count"] >= 1
        assert all(f.answers is not None for f in foreign.frames
                   if f.direction.value == "rx" and "AARE" in f.summary)


# What each demo scenario's capture shows of the poller (the probe, seen from outside): a code
# among the causes, or None for a clean verdict.
DEMO_EXPECTED = {
    "wrong-address": "tap.poller.no_answer", "busy-bridge": "tap.bridge.busy",
    "wrapper-only": "tap.meter.closed_on_request", "healthy": None, "optical": None,
    "wrong-password": "tap.poller.login_failed", "dm": "tap.meter.refused",
    "echo": "tap.meter.stale_bytes", "iec62056-21": "tap.meter.foreign_protocol",
    "stale-bytes": "tap.meter.stale_bytes", "bad-fcs": "tap.meter.damaged",
    "cut-reply": "tap.meter.damaged", "inactivity": None,
    # the probe, seen from outside, waits 0.3 s for a meter that answers after 0.8 s
    "slow": "tap.poller.timeout_too_short",
}


def _demo_scenarios() -> list[Any]:
    from dlmsdoctor.cli.demo_cmd import SCENARIOS

    # lockout: its story needs the earlier runs' bytes (see the lockout test below)
    return [pytest.param(name, marks=[pytest.mark.slow] if name == "slow" else [])
            for name, sc in SCENARIOS.items() if not sc.before]


def test_every_demo_scenario_has_an_expectation() -> None:
    assert {p.values[0] for p in _demo_scenarios()} == set(DEMO_EXPECTED)


@pytest.mark.parametrize("name", _demo_scenarios())
async def test_every_demo_scenario_seen_by_tcpdump_is_a_pollers_traffic(
        name: str, tmp_path: Path) -> None:
    from dlmsdoctor.cli.demo_cmd import DEMO_TIMEOUT, SCENARIOS
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.engine import ProbeOptions

    sc = SCENARIOS[name]
    async with sim.SimulatedMeter(sc.profile, faults=list(sc.faults)) as meter:
        options = ProbeOptions(
            "127.0.0.1", meter.port, icmp=False, timeout=DEMO_TIMEOUT, busy_retry_wait=0.1,
            serial_number=sc.serial_number,
            credentials=tuple(parse_credential(c) for c in sc.creds), **sc.options)
        _, foreign = await _probe_and_strip(options, tmp_path)
    _as_poller(foreign)
    assert foreign.diagnosis is not None
    codes = [c.code for c in foreign.diagnosis.causes]
    expected = DEMO_EXPECTED[name]
    assert (expected in codes) if expected else foreign.diagnosis.status == "ok", codes


async def test_a_refused_connection_is_the_pollers_unreachable_meter(tmp_path: Path) -> None:
    """SYN answered by RST: the poller could not connect; said of the poller, not of us."""
    import socket

    from dlmsdoctor.engine import ProbeOptions

    with socket.socket() as probe_port:  # a loopback port nobody listens on
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    options = ProbeOptions("127.0.0.1", port, **FAST)  # type: ignore[arg-type]
    session, foreign = await _probe_and_strip(options, tmp_path, port)
    assert _verdict(session)[1] == "tcp.refused"
    _as_poller(foreign)
    assert _verdict(foreign) == ("failed", "tap.target.unreachable")
    assert all(c.failed == "refused" and c.opened_at is None for c in foreign.connections)
    finding = next(f for f in foreign.findings if f.code == "tap.target.unreachable")
    assert finding.message.startswith("The poller at 127.0.0.1:")
    assert "refused" in finding.message and "tap" not in finding.message.replace("tap.", "")
    opened = _cli("open", str(tmp_path / "run.pcap"), "--port", str(port))
    assert "could not connect (refused)" in opened


def test_unanswered_syns_are_the_pollers_unreachable_meter(tmp_path: Path) -> None:
    from tests.helpers.damage import pcap_of, raw_ip_tcp

    start = 1_700_000_000_000_000
    syns = [(start + 3_000_000 * i, raw_ip_tcp(40000 + i, 4059, 100, 0x02, b""))
            for i in range(3)]
    path = tmp_path / "syn.pcap"
    path.write_bytes(pcap_of(syns))
    session = load_and_diagnose(path)
    _as_poller(session)
    assert _verdict(session) == ("failed", "tap.target.unreachable")
    assert [c.failed for c in session.connections] == ["timeout"] * 3
    finding = next(f for f in session.findings if f.code == "tap.target.unreachable")
    assert finding.data["count"] == 3 and "the SYN got no answer" in finding.message


async def test_a_capture_of_a_pollers_wrong_password_runs_names_the_lockout(
        tmp_path: Path) -> None:
    """tcpdump running while a client tried an outdated password run after run: the capture
    holds every refusal, and the poller is told its pace and that the meter is locked."""
    from dlmsdoctor.cli.demo_cmd import DEMO_TIMEOUT, SCENARIOS
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger
    from tests.helpers.damage import pcap_of

    sc = SCENARIOS["lockout"]
    packets: list[tuple[int, bytes]] = []
    async with sim.SimulatedMeter(sc.profile, faults=list(sc.faults)) as meter:
        for n, cred in enumerate([*sc.before, *sc.creds]):
            options = ProbeOptions("127.0.0.1", meter.port, icmp=False, timeout=DEMO_TIMEOUT,
                                   busy_retry_wait=0.1, credentials=(parse_credential(cred),))
            # a ledger per run: the client in the capture is not held back by dlmsdoctor's
            session = await run_probe(options, ledger=MemoryLedger())
            write_capture(session, tmp_path / f"{n}.pcapng")
            packets += [(p.ts_us, p.data) for p in read_raw(tmp_path / f"{n}.pcapng").packets]
    path = tmp_path / "all.pcap"
    path.write_bytes(pcap_of(sorted(packets, key=lambda p: p[0])))
    foreign = load_and_diagnose(path)
    _as_poller(foreign)
    assert _verdict(foreign)[1] == "tap.poller.login_retries"
    retries = [f for f in foreign.findings if f.code == "tap.poller.login_retries"]
    assert retries[-1].data["failures"] >= 2
    assert foreign.settings["tap"]["logins"]["failed"] >= 2
