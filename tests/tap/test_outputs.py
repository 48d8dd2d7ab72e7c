"""A tap session in the common outputs: ``dlmsdoctor open`` of its JSON and of its pcapng,
``dlmsdoctor report`` (md, html, json; English and Spanish), the TUI's History reopening it, and
the capture as tshark reads it. Made once by the real tap, with two gurux pollers from their own
loopback addresses against the simulated meter:

- poller A (127.0.0.2) connects and stays silent for a second, then closes (a probe diagnosis
  once read this as "meter.late_replies");
- poller B (127.0.0.3), meanwhile, logs in twice with a wrong password, then reads without
  releasing the association.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.cli.main import cli
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import MeterThread
from tests.sim import gurux_peer
from tests.tap.helpers import TapThread

POLLER_A, POLLER_B = "127.0.0.2", "127.0.0.3"


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_COLOR", "1")


def _from(source: str, port: int, meter: Any, **kw: Any) -> gurux_peer.GuruxPeer:
    """A gurux poller whose socket is bound to ``source`` (the tap must record that address)."""
    real = socket.create_connection

    def bound(address: Any, timeout: Any = None, source_address: Any = None) -> socket.socket:
        return real(address, timeout, (source, 0))

    p = meter.profile
    with mock.patch.object(gurux_peer.socket, "create_connection", bound):
        return gurux_peer.GuruxPeer(port, physical=p.server_physical or 0,
                                    address_size=p.address_size, **kw)


@pytest.fixture(scope="module")
def tap_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("tap-outputs")
    with MeterThread("default") as meter, TapThread(
            meter.port, frames_path=folder / "tap.frames.jsonl", show_secrets=False) as tap:
        silent = socket.create_connection(("127.0.0.1", tap.port), source_address=(POLLER_A, 0))
        time.sleep(0.2)
        for _ in range(2):
            with _from(POLLER_B, tap.port, meter, client_sap=1, password="wrong-pw",
                       authentication=Authentication.LOW) as peer, \
                    contextlib.suppress(Exception):
                peer.connect()
        with _from(POLLER_B, tap.port, meter) as peer:
            peer.connect()
            peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
        time.sleep(1.0)
        silent.close()
        time.sleep(0.3)
        session = tap.stop()
    path = folder / "tap.json"
    path.write_text(session.dumps(), encoding="utf-8")
    from dlmsdoctor.output.capture import write_capture

    capture = folder / "tap.pcapng"
    write_capture(session, capture)
    yield {"session": session, "json": path, "pcapng": capture, "folder": folder}


def _codes(session: Session) -> list[str]:
    assert session.diagnosis is not None
    return [c.code for c in session.diagnosis.causes]


def test_the_run_made_both_pollers_and_the_tap_diagnosis(tap_files: dict[str, Any]) -> None:
    session = tap_files["session"]
    hosts = {c.client.rpartition(":")[0] for c in session.connections}
    assert hosts == {POLLER_A, POLLER_B}
    assert _codes(session)[0] == "tap.poller.login_retries"
    # poller B read the logical device name: the tap keeps what the poller read of the meter
    assert str(session.identity.get("logical_device_name", "")).startswith(
        session.identity.get("manufacturer", "?"))


@pytest.mark.parametrize("which", ["json", "pcapng"])
def test_load_and_diagnose_uses_the_taps_rules(tap_files: dict[str, Any], which: str) -> None:
    """What open, report and the TUI load: the tap's diagnosis, not the probe's (which read the
    silent poller as a slow meter and said "Nothing was probed")."""
    from dlmsdoctor.output.capture_read import load_and_diagnose
    from dlmsdoctor.tap.rules import diagnose

    loaded = load_and_diagnose(tap_files[which])
    assert loaded.kind == "tap"
    assert loaded.diagnosis == diagnose(tap_files["session"])
    assert all(code.startswith("tap.") for code in _codes(loaded)), _codes(loaded)
    assert "meter.late_replies" not in _codes(loaded)
    assert "Nothing was probed" not in loaded.diagnosis.headline


@pytest.mark.parametrize("which", ["json", "pcapng"])
def test_open_prints_the_taps_diagnosis(tap_files: dict[str, Any], which: str) -> None:
    result = CliRunner().invoke(cli, ["open", str(tap_files[which])], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ("status  failed: Your poller keeps retrying a refused login: the meter will lock"
            in result.stdout)
    assert "cause 1  95%  tap.poller.login_retries" in result.stdout
    assert "meter.late_replies" not in result.stdout


def _report(path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["report", str(path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_is_the_taps_in_english(tap_files: dict[str, Any], fmt: str) -> None:
    text = _report(tap_files["json"], "--format", fmt)
    session = tap_files["session"]
    assert "dlmsdoctor relayed your poller to" in text
    assert "Pollers seen: 127.0.0.2 (1 connection(s)); 127.0.0.3 (3 connection(s))" in text
    assert "Your poller keeps retrying a refused login" in text
    assert "The meter&#x27;s side" in text if fmt == "html" else "The meter's side" in text
    assert "answers to AARQ" in text and "AARQ: authentication-failure" in text
    assert "TX = sent by your poller to the meter" in text
    # the same UA three times (a reconnecting poller) is said once, counted
    assert text.count("Negotiated HDLC parameters") == 1 and "window TX/RX 1/1 (×3)" in text
    for conn in session.connections:  # each connection with its own poller
        assert f"#{conn.id} {conn.client} → 127.0.0.1:{session.target.port}" in text
    assert "by the poller (FIN)" in text
    first = session.frames[0]
    client = session.connection(first.conn_id).client
    assert f"connection {first.conn_id} · poller {client} → meter" in text
    # nothing a probe would say: dlmsdoctor neither tested, sent, nor closed anything
    assert not re.search(r"[|>] ?(reset )?by dlmsdoctor", text)  # no connection closed by it
    for probe_words in ("dlmsdoctor tested", "TX = sent by dlmsdoctor", "Nothing was probed",
                        "No working connection was found yet", "Probe findings", "step tap"):
        assert probe_words not in text, probe_words


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_is_the_taps_in_spanish(tap_files: dict[str, Any], fmt: str) -> None:
    text = _report(tap_files["pcapng"], "--format", fmt, "--lang", "es")
    assert "dlmsdoctor retransmitió su sistema de lectura" in text
    assert "reintenta un login rechazado" in text
    assert "2 autenticación(es) fallida(s) en los últimos 15 min (SAP de cliente 1" in text
    assert "Respuestas del medidor" in text and "respuestas a AARQ" in text
    assert "TX = enviado por su sistema de lectura" in text
    assert "por el sistema de lectura (FIN)" in text
    assert "Hallazgos durante la retransmisión" in text
    assert "tap detenido por" in text
    assert not re.search(r"[|>] ?(reseteada )?por dlmsdoctor", text)
    for probe_words in ("dlmsdoctor probó", "TX = enviado por dlmsdoctor",
                        "Hallazgos de las pruebas"):
        assert probe_words not in text, probe_words


def test_json_report_says_the_kind_and_who_tx_and_rx_are(tap_files: dict[str, Any]) -> None:
    doc = json.loads(_report(tap_files["json"], "--format", "json"))
    session = tap_files["session"]
    assert doc["session"]["kind"] == "tap"
    assert doc["roles"] == {"tx": "your poller", "rx": "the meter (or bridge)"}
    assert doc["diagnosis"]["causes"][0]["code"] == "tap.poller.login_retries"
    assert doc["tap"]["pollers"] == sorted(c.client for c in session.connections)
    assert doc["tap"]["answer_times"]["AARQ"]["count"] == 3
    assert [c["client"] for c in doc["measurements"]["connections"]] == [
        c.client for c in session.connections]
    assert {f["route"].split(" ")[0] for f in doc["frames"]} == {"poller", "meter"}
    es = json.loads(_report(tap_files["json"], "--format", "json", "--lang", "es"))
    assert es["roles"]["tx"] == "su sistema de lectura"


def test_capture_draws_each_connection_from_its_poller(tap_files: dict[str, Any]) -> None:
    """Read back with dlmsdoctor's own pcapng reader: every TCP segment of a connection has its
    poller's address and port (no shared client address), and the section says it was a tap."""
    from dlmsdoctor.output.capture_read import _ip_of, _tcp, read_raw

    session = tap_files["session"]
    raw = read_raw(tap_files["pcapng"])
    assert any(c.startswith("TAP: dlmsdoctor tap listened on") for c in raw.section_comments)
    assert any(c.startswith(f"dlmsdoctor 0.1.0 tap session {session.id}")
               or " tap session " in c for c in raw.section_comments)
    ends = set()
    for packet in raw.packets:
        ip = _ip_of(packet)
        assert ip is not None
        seg = _tcp(packet.ts_us, ip)
        assert seg is not None
        if seg.dport == session.target.port:
            ends.add(f"{seg.src}:{seg.sport}")
        else:
            ends.add(f"{seg.dst}:{seg.dport}")
    assert ends == {c.client for c in session.connections}
    closes = [c for p in raw.packets for c in p.comments if "closed by" in c]
    assert closes and all("dlmsdoctor" not in c for c in closes)
    assert any("closed by the poller (FIN)" in c for c in closes)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_both_pollers_streams(tap_files: dict[str, Any]) -> None:
    session = tap_files["session"]
    out = subprocess.run(
        ["tshark", "-r", str(tap_files["pcapng"]), "-T", "fields", "-e", "tcp.stream",
         "-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack"],
        capture_output=True, text=True, timeout=60, check=True)
    streams: dict[str, str] = {}
    for line in out.stdout.splitlines():
        stream, src, port, syn, ack = line.split("\t")
        if syn == "1" and ack == "0":  # the opening SYN: from the poller
            streams[stream] = f"{src}:{port}"
    assert sorted(streams.values()) == sorted(c.client for c in session.connections)
    assert {s.rpartition(":")[0] for s in streams.values()} == {POLLER_A, POLLER_B}
    # the silent poller's stream spans the other poller's: both at once, as they were
    by_client = {c.client: c for c in session.connections}
    silent = next(c for c in by_client.values() if c.client.startswith(POLLER_A))
    others = [c for c in by_client.values() if c is not silent]
    assert all(silent.opened_at < c.opened_at and c.closed_at < silent.closed_at
               for c in others)


async def test_history_lists_the_kind_and_reopens_the_taps_diagnosis(
        tap_files: dict[str, Any], tmp_path: Path) -> None:
    from textual.widgets import DataTable, Static

    from dlmsdoctor.app import create_app
    from tests.tui.fixtures import story_session

    folder = tmp_path / "sessions"
    folder.mkdir()
    shutil.copy(tap_files["json"], folder / "tap.json")
    (folder / "story.json").write_text(story_session().dumps(), encoding="utf-8")
    app = create_app(sessions_dir=folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f5")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        kinds = {row[-1] for row in rows}
        assert kinds == {"tap", "probe"}
        row = next(i for i, r in enumerate(rows) if r[-1] == "tap")
        table.move_cursor(row=row)
        await pilot.pause()
        notes = str(app.screen.query_one("#history-notes", Static).render())
        assert notes.startswith("tap failed: Your poller keeps retrying")  # seen at 80 columns
        await pilot.press("enter")
        await pilot.pause()
        assert app.session is not None and app.session.kind == "tap"
        assert app.session.diagnosis is not None
        assert app.session.diagnosis.causes[0].code == "tap.poller.login_retries"
        assert app.screen.id == "diagnosis"
        from textual.widgets import OptionList

        causes = app.screen.query_one("#causes", OptionList)
        assert "Your poller keeps retrying" in str(causes.get_option_at_index(0).prompt)


def test_capture_of_a_long_run_has_every_frame_from_its_file(tmp_path: Path) -> None:
    """The session in memory keeps the first frames and the last 200; ``open SESSION.json
    --capture`` (and the TUI's export) writes them all, read from the run's frames file."""
    frames_file = tmp_path / "long.frames.jsonl"
    with MeterThread("default") as meter, TapThread(meter.port, frames_path=frames_file,
                                                    keep_frames=10) as tap:
        with _from(POLLER_B, tap.port, meter) as peer:
            peer.connect()
            for _ in range(130):
                peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
            peer.release()
        time.sleep(0.3)
        session = tap.stop()
    total = session.settings["tap"]["frames_total"]
    assert len(session.frames) < total  # bounded in memory
    path = tmp_path / "long.json"
    path.write_text(session.dumps(), encoding="utf-8")
    capture = tmp_path / "long.pcapng"
    result = CliRunner().invoke(cli, ["open", str(path), "--capture", str(capture)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    from dlmsdoctor.output.capture_read import read_capture

    restored = read_capture(capture)
    assert [f.index for f in restored.frames] == list(range(total))


def test_an_unreachable_meter_side_is_said_in_the_report(tmp_path: Path) -> None:
    """No frame at all: the tap's diagnosis still leads (the probe's rules have nothing to
    read), and the connection is the poller's, closed because the meter side was refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    with TapThread(dead_port, connect_timeout=2.0) as tap:
        with socket.create_connection(("127.0.0.1", tap.port), source_address=(POLLER_A, 0)) \
                as poller:
            poller.settimeout(3)
            with contextlib.suppress(OSError):
                poller.recv(1)
        time.sleep(0.2)
        session = tap.stop()
    path = tmp_path / "dead.json"
    path.write_text(session.dumps(), encoding="utf-8")
    opened = CliRunner().invoke(cli, ["open", str(path)], catch_exceptions=False)
    assert "tap.target.unreachable" in opened.stdout
    en = _report(path)
    assert "meter side unreachable (refused): the tap closed the poller's connection" in en
    assert f"#1 {session.connections[0].client} → 127.0.0.1:{dead_port}" in en
    es = _report(path, "--lang", "es")
    assert "lado del medidor inalcanzable (rechazada)" in es
    assert "No se puede llegar al medidor" in es
