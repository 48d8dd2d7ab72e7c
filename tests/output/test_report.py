"""Reports: golden files for md/html/json in English and Spanish, and what every report must hold.

Regenerate the goldens after an intended change with ``DLMSDOCTOR_REGEN_GOLDEN=1 pytest
tests/output/test_report.py`` and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dlmsdoctor.events import Direction
from dlmsdoctor.output.report import ReportError, build_report, render_report, write_report
from dlmsdoctor.session import FrameRecord, Session, Target
from tests.helpers.dlms_frames import PASSWORD
from tests.output.seed_session import seed_session

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("DLMSDOCTOR_REGEN_GOLDEN") == "1"
CASES = [(fmt, lang) for lang in ("en", "es") for fmt in ("md", "html", "json")]


@pytest.mark.parametrize(("fmt", "lang"), CASES)
def test_golden(fmt: str, lang: str) -> None:
    text = render_report(seed_session(), fmt, lang)
    path = GOLDEN / f"seed.{lang}.{fmt}"
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}: run with DLMSDOCTOR_REGEN_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("fmt", "lang"), CASES)
def test_password_masked_everywhere_unless_asked(fmt: str, lang: str) -> None:
    text = render_report(seed_session(), fmt, lang)
    assert PASSWORD.decode() not in text
    assert PASSWORD.hex(" ").upper() not in text
    assert "31 31 31 31 31 31 31 31" not in text
    shown = render_report(seed_session(), fmt, lang, show_secrets=True)
    assert PASSWORD.hex(" ").upper() in shown


def test_json_report_is_stable_for_scripts() -> None:
    doc = json.loads(render_report(seed_session(), "json", "es"))
    assert (doc["schema"], doc["version"], doc["lang"]) == ("dlmsdoctor.report", 1, "es")
    assert doc["status"]["code"] == "degraded"
    assert [c["code"] for c in doc["diagnosis"]["causes"]] == [
        "client.malformed_frame", "hdlc.wrong_address", "bridge.teardown_busy"]
    assert doc["measurements"]["ping"]["loss"] == 0.0
    assert doc["measurements"]["ping"]["rtt_avg"] == pytest.approx(0.1006)
    assert [c["connect_time"] for c in doc["measurements"]["connections"]] == [
        0.0151, 0.0148, 0.0152]
    # Negotiated parameters come from the meter's own UA, decoded again, not from step text.
    assert doc["measurements"]["negotiated"][0]["frame"] == 4
    assert doc["measurements"]["negotiated"][0]["max_info_rx"] == 128
    assert doc["measurements"]["association"][0]["max_pdu_size"] == 512
    assert doc["profile"]["values"]["server_physical"] == 6678
    assert len(doc["frames"]) == 13
    assert doc["frames"][1]["problems"][0].startswith("hdlc.params.group_length")


def test_every_cause_points_to_frames_in_the_appendix() -> None:
    doc = build_report(seed_session(), "en")
    indexes = {f["index"] for f in doc["frames"]}
    for cause in doc["diagnosis"]["causes"]:
        refs = [ev["frame_ref"]["index"] for ev in cause["evidence"] if "frame_ref" in ev]
        assert refs and set(refs) <= indexes
    html = render_report(seed_session(), "html", "en")
    for index in indexes:
        assert f'id="frame-{index}"' in html


def test_actions_immediate_then_later_in_rank_order() -> None:
    doc = build_report(seed_session(), "en")
    assert [a["cause"] for a in doc["actions"]["now"]] == ["client.malformed_frame",
                                                            "hdlc.wrong_address"]
    assert [a["cause"] for a in doc["actions"]["later"]] == ["hdlc.wrong_address",
                                                              "bridge.teardown_busy"]
    md = render_report(seed_session(), "md", "en")
    assert md.index("### Immediate") < md.index("### Later")


def test_spanish_report_speaks_spanish() -> None:
    md = render_report(seed_session(), "md", "es")
    for english in ("Executive summary", "Recommended actions", "Most likely cause",
                    "Works:", "Wrong HDLC server address", "confidence"):
        assert english not in md
    for spanish in ("Resumen ejecutivo", "Acciones recomendadas", "Inmediatas",
                    "Dirección HDLC de servidor equivocada", "9,9 s", "pérdida 0 %"):
        assert spanish in md


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)


def test_html_is_self_contained_and_escapes_what_it_shows() -> None:
    session = seed_session()
    evil = b"<script>alert('x')</script>&\r\n"
    session.frames.append(FrameRecord(13, 1, Direction.RX, 0.513, evil, "tcp.connect", "text"))
    session.settings["note"] = '"><img src=x onerror=alert(1)>'
    html = render_report(session, "html", "en")
    checker = _Checker()
    checker.feed(html)
    assert "script" not in checker.tags and "img" not in checker.tags
    assert checker.external == []
    assert "&lt;script&gt;" in html
    assert "@media print" in html
    assert not re.search(r"https?://", html)


def test_a_session_without_steps_or_diagnosis_still_reports() -> None:
    session = Session(id="x", tool_version="(foreign capture)",
                      started_at="2025-01-01T00:00:00+00:00", target=Target("10.0.0.9", 4059))
    session.frames = [FrameRecord(0, 1, Direction.TX, 0.0, b"\x00\x01\x00\x10\x00\x01\x00\x02\xc0")]
    for fmt, lang in CASES:
        text = render_report(session, fmt, lang)
        assert "10.0.0.9" in text


def test_bad_format_or_language_or_path_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError):
        render_report(seed_session(), "pdf")
    with pytest.raises(ReportError):
        render_report(seed_session(), "md", "fr")
    with pytest.raises(ReportError):
        write_report(seed_session(), tmp_path / "no" / "such" / "dir.md")


def test_write_report_writes_utf8(tmp_path: Path) -> None:
    path = tmp_path / "informe.md"
    text = write_report(seed_session(), path, "md", "es")
    assert path.read_text(encoding="utf-8") == text
    assert "Diagnóstico" in text


def test_every_cause_code_of_the_diagnosis_has_spanish() -> None:
    """A new rule without Spanish would leave English in a Spanish report: caught here."""
    pytest.importorskip("dlmsdoctor.diagnosis.verdict")  # registers every rule module
    from dlmsdoctor.diagnosis.registry import RULES
    from dlmsdoctor.output.i18n import CAUSE_ES

    codes = {code for rule in RULES for code in rule.codes}
    assert codes, "no diagnosis rules registered"
    assert sorted(codes - set(CAUSE_ES)) == []


def test_every_wording_has_both_languages_with_the_same_placeholders() -> None:
    """The wording tables pair an English and a Spanish text per key; a Spanish text that drops
    or renames a {placeholder} would lose a figure (or raise) only in Spanish reports."""
    import string

    from dlmsdoctor.output import i18n

    tables = {
        name: table
        for name, table in vars(i18n).items()
        if isinstance(table, dict) and table and all(isinstance(e, dict) for e in table.values())
    }
    assert {"_S", "STATUS", "STEP_STATUS", "WHOSE", "LAYER", "FIGURE"} <= set(tables)
    for name, table in tables.items():
        for key, entry in table.items():
            assert set(entry) == set(i18n.LANGS), (name, key)
            fields = [
                {f for _, f, _, _ in string.Formatter().parse(text) if f}
                for text in entry.values()
            ]
            assert fields[0] == fields[1], (name, key, fields)


def test_markdown_survives_hostile_text_from_a_meter() -> None:
    """A string read from the meter lands in decoded fields inside a fenced block: it must not
    close the fence, and its markup must stay text."""
    from dlmsdoctor.codec.hdlc import ServerAddress, build_i

    value = b"```\n# x <b>"
    apdu = bytes.fromhex("C401C1000A") + bytes([len(value)]) + value  # visible-string
    frame = build_i(ServerAddress(1, 1, 2), 16, to_server=False, ns=0, nr=0, info=apdu)
    session = seed_session()
    session.frames.append(FrameRecord(13, 3, Direction.RX, 9.6, frame, "cosem.identity", "hdlc"))
    md = render_report(session, "md", "en")
    appendix = md.split("## Appendix", 1)[1]
    assert "visible-string" in appendix  # the field is there...
    assert appendix.count("```") % 2 == 0  # ...and every fence is closed
    outside = "".join(appendix.split("```")[::2])  # the text between fenced blocks
    assert "<b>" not in outside and "\\<b\\>" in outside  # markup escaped in paragraphs


def test_json_report_top_level_keys_are_the_documented_ones() -> None:
    """docs/reports.md promises these keys to scripts: removing or renaming one bumps version."""
    doc = json.loads(render_report(seed_session(), "json", "en"))
    assert set(doc) == {
        "schema", "version", "lang", "report_version", "secrets_shown", "session", "target",
        "status", "summary", "rungs", "measurements", "diagnosis", "actions", "profile",
        "settings", "credential_sets", "logins", "identity", "findings", "frames",
        "settings_text", "identity_text", "partition", "roles",
    }
    assert set(doc["measurements"]) == {"ping", "connections", "negotiated", "association"}
    assert set(doc["frames"][0]) >= {"index", "conn", "dir", "at", "step", "hex", "fields",
                                     "problems"}
    cause = doc["diagnosis"]["causes"][0]
    assert set(cause) >= {"rank", "code", "title", "confidence", "whose", "evidence", "actions"}


def test_english_and_spanish_reports_rest_on_the_same_diagnosis() -> None:
    """QA defect 5: the seed story's English report showed the fixture's hand-written causes,
    the Spanish one its own by code. Same causes, ranks, confidences and parties in both."""
    en, es = build_report(seed_session(), "en"), build_report(seed_session(), "es")
    def key(doc: dict) -> list[tuple]:
        return [(c["rank"], c["code"], c["confidence"], c["whose"], len(c["evidence"]))
                for c in doc["diagnosis"]["causes"]]
    assert key(en) == key(es)
    assert [a["cause"] for a in en["actions"]["now"]] == [a["cause"] for a in es["actions"]["now"]]
    assert all(c["translated"] for c in es["diagnosis"]["causes"])
    # the Spanish table translates the rules' actions one by one (the fixture's hand-written
    # bridge.busy had one 'now' where the rule, and the Spanish, have two)
    for a, b in zip(en["diagnosis"]["causes"], es["diagnosis"]["causes"], strict=True):
        assert [x["when"] for x in a["actions"]] == [x["when"] for x in b["actions"]], a["code"]


def test_every_sample_capture_says_the_same_in_both_languages() -> None:
    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.output.capture_read import load_session_file

    samples = sorted((Path(__file__).parents[2] / "captures").glob("*.session.json"))
    assert samples
    for path in samples:
        session = load_session_file(str(path), None)
        session.diagnosis = diagnose(session)
        en, es = build_report(session, "en"), build_report(session, "es")
        for a, b in zip(en["diagnosis"]["causes"], es["diagnosis"]["causes"], strict=True):
            assert (a["code"], a["confidence"]) == (b["code"], b["confidence"])
            assert [x["when"] for x in a["actions"]] == [x["when"] for x in b["actions"]], (
                path.name, a["code"])


def test_polish_no_repeats_no_stray_backslashes_no_false_works() -> None:
    """QA defect 9: 'Works: Release' with nothing opened, the same long bridge text quoted
    three times, 'serial number 12345678; serial number 12345678', escaped backticks around
    `dlmsdoctor decode`, and 'Entramado' in Spanish."""
    from dlmsdoctor.output.capture_read import load_session_file

    captures = Path(__file__).parents[2] / "captures"
    busy = load_session_file(str(captures / "busy-bridge.session.json"))
    doc = build_report(busy, "en")
    assert not any(line.startswith("Works:") and "Release" in line for line in doc["summary"])
    md = render_report(busy, "md", "en")
    causes = md[md.index("## Diagnosis"):md.index("## Recommended actions")]
    # the bridge's problem said once, in words (the appendix: per frame)
    assert causes.count("the bridge says its port is in use") == 1
    seed_md = render_report(seed_session(), "md", "en")
    assert "serial number 12345678; serial number 12345678" not in seed_md
    ping_row = next(x for x in seed_md.splitlines() if x.startswith("| Network (ICMP)"))
    assert ping_row.count("98.2") == 1
    assert "`dlmsdoctor decode`" in seed_md and "\\`dlmsdoctor" not in seed_md
    es = render_report(seed_session(), "md", "es") + render_report(seed_session(), "html", "es")
    assert "ntramado" not in es and "Formato de trama" in es


def test_every_probe_finding_code_in_the_docs_has_spanish() -> None:
    """docs/probes.md is the engine's contract: every finding code it lists reads in Spanish."""
    import re
    from pathlib import Path

    from dlmsdoctor.output import i18n

    doc = (Path(__file__).parents[2] / "docs" / "probes.md").read_text(encoding="utf-8")
    codes = set(re.findall(r"`([a-z_]+\.[a-z_.]+)`", doc))
    not_findings = ("session.", "settings.", "dlmsdoctor.")
    missing = sorted(
        code
        for code in codes
        if code not in i18n.FINDING_ES
        and code not in i18n.STEP_TITLE_ES
        and not code.startswith(not_findings)
    )
    assert missing == []


def test_meter_text_in_the_rung_table_is_escaped() -> None:
    """Issue 10 item 10: a logical device name ``DLD<script>|x`` read from the meter lands in
    the rung table as text: no raw tag, no extra table column, nothing raw in the HTML."""
    session = seed_session()
    step = session.step("cosem.identity")
    assert step is not None
    step.summary = "logical_device_name=DLD<script>|x*y*"
    session.identity["logical_device_name"] = "DLD<script>|x*y*"
    md = render_report(session, "md", "en")
    row = next(line for line in md.splitlines() if line.startswith("| COSEM reads"))
    assert "<script>" not in row and "\\<script\\>" in row
    assert row.count(" | ") == 4  # five cells: the pipe from the meter is escaped
    assert "logical device name DLD" in row  # the figure's label, not its key
    html = render_report(session, "html", "en")
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("note", [
    "SNRM to 1/1 (2-byte): no answer", "UA from 1/6678 (4-byte)", "AARQ: no answer",
    "the UA arrived 801 ms after the SNRM", "the AARE arrived 1.40 s after the AARQ",
    "connection 1 closed by the peer 0.7 ms after this frame, no byte back",
    "connection 1 closed after 31 ms idle", "the bridge wrote 'Port already in use' and closed",
    "request (frame #3), answered late", "rejected frame (56 info bytes)",
    "the meter's AARE refused credential set 'mgmt' (client SAP 1, low): authentication-failure",
    "the run stopped: the connection was closed at once, with 2 failed login(s) recent in the "
    "login ledger",
    "the frame check sequence (FCS) is wrong: the frame was damaged on the way (noise, wrong "
    "serial settings)",
])
def test_evidence_notes_the_rules_write_read_in_spanish(note: str) -> None:
    from dlmsdoctor.output.i18n_notes import note_es

    spanish = note_es(note)
    assert spanish is not None and spanish != note
    assert not re.search(r"\d\.\d", spanish)  # decimal commas
    assert "(2-byte)" not in spanish and "credential set" not in spanish
