"""Reports of a tap session: the shared report (``output.report``) with a tap's own summary.

The report code is written for a probe (a ladder of steps, dlmsdoctor as the client). A tap has no
steps and the client is the user's poller, so this module builds the shared report document and
replaces what would mislead: the executive summary, the "layer by layer" table (here: the meter's
answer times per service and its refusals), and who closed each connection. The causes,
evidence frames, appendix and both languages are the shared report's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlmsdoctor.session import Session


def _s(lang: str, key: str, **values: object) -> str:
    from dlmsdoctor.output.i18n_tap import TAP_S

    entry = TAP_S[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def _ms(value: object, lang: str) -> str:
    from dlmsdoctor.output import i18n

    if not isinstance(value, int | float):
        return "-"
    if value >= 1.0:
        return f"{i18n.number(value, lang, 2)} s"
    return f"{i18n.number(value * 1000, lang)} ms"


def tap_report_doc(session: Session, lang: str = "en", show_secrets: bool = False
                   ) -> dict[str, Any]:
    """The shared report document, made right for a tap session."""
    from dlmsdoctor.output import i18n
    from dlmsdoctor.output.report import build_report

    doc = build_report(session, lang, show_secrets)
    tap = session.settings.get("tap", {})
    frames = tap.get("frames", {})
    lines = [_s(lang, "sum_tap", target=f"{session.target.host}:{session.target.port}",
                started=i18n.when_text(session.started_at),
                duration=i18n.number(session.duration or 0.0, lang, 1),
                connections=tap.get("connections", 0), poller=frames.get("poller", 0),
                meter=frames.get("meter", 0))]
    causes = doc["diagnosis"]["causes"]
    if causes:
        top = causes[0]
        lines.append(_s(lang, "sum_cause", confidence=round(float(top["confidence"]) * 100),
                        whose=top.get("whose_label", top.get("whose", "")), title=top["title"]))
        now = doc.get("actions", {}).get("now", [])
        if now:
            lines.append(_s(lang, "sum_first_action", action=now[0]["text"]))
    else:
        lines.append(_s(lang, "sum_ok"))
    total, kept = tap.get("frames_total", 0), tap.get("frames_kept", 0)
    if total and kept < total:
        lines.append(_s(lang, "sum_kept", kept=kept, total=total))
    doc["summary"] = lines
    doc["rungs"] = _meter_rows(tap, lang)
    for conn, record in zip(doc["measurements"]["connections"], session.connections,
                            strict=False):
        if record.client:
            conn["host"] = f"{record.client} -> {record.host}"
        if record.failed:
            continue
        if record.close_how is not None and record.close_how.value == "local":
            conn["close_text"] = _s(lang, "closed_tap")
        elif record.closed_by_peer is not None:
            who = _s(lang, "closed_meter" if record.closed_by_peer else "closed_poller")
            conn["close_text"] = f"{record.close_how.value.upper() if record.close_how else ''}" \
                                 f" {who}".strip()
    doc["kind"] = "tap"
    return doc


def _meter_rows(tap: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """Rows for the "layer by layer" table: the meter side seen from the poller's traffic."""
    from dlmsdoctor.tap.text import service_order

    rows = []
    times = tap.get("answer_times", {})
    for service in sorted(times, key=service_order):
        t = times[service]
        late = int(t.get("late", 0))
        rows.append(_row(_s(lang, "layer_meter"), _s(lang, "answers_to", service=service),
                         _s(lang, "late") if late else _s(lang, "ok"), _ms(t.get("p50"), lang),
                         _s(lang, "answer_figures", p50=_ms(t.get("p50"), lang),
                            p90=_ms(t.get("p90"), lang), p99=_ms(t.get("p99"), lang),
                            max=_ms(t.get("max"), lang), count=t.get("count", 0), late=late),
                         "warning" if late else "ok"))
    for what, count in tap.get("refusals", {}).items():
        rows.append(_row(_s(lang, "layer_refused"), what, _s(lang, "refused_times", count=count),
                         "-", "", "warning"))
    return rows


def _row(layer: str, title: str, status_label: str, duration: str, summary: str,
         status: str) -> dict[str, Any]:
    return {"id": f"tap.{title}", "layer": "tap", "layer_label": layer, "title": title,
            "status": status, "status_label": status_label, "started": None, "finished": None,
            "duration": None, "duration_text": duration, "summary": summary, "notes": [],
            "figures": []}


def render_tap_report(session: Session, fmt: str = "md", lang: str = "en",
                      show_secrets: bool = False) -> str:
    from dlmsdoctor.output.report import FORMATS, ReportError

    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    from dlmsdoctor.output.i18n import t

    doc = tap_report_doc(session, lang, show_secrets)
    if fmt == "json":
        from dlmsdoctor.output.report_json import render_json

        return render_json(doc)
    # The shared renderers say TX is "sent by dlmsdoctor" (a probe); in a tap it is the poller.
    probe_intro, tap_intro = t(lang, "appendix_intro"), _s(lang, "appendix_intro")
    if fmt == "html":
        import html

        from dlmsdoctor.output.report_html import render_html

        return render_html(doc).replace(html.escape(probe_intro), html.escape(tap_intro))
    from dlmsdoctor.output.report_md import render_md

    return render_md(doc).replace(probe_intro, tap_intro)


def write_tap_report(session: Session, path: str | Path, fmt: str = "md", lang: str = "en",
                     show_secrets: bool = False) -> str:
    from dlmsdoctor.output.report import ReportError

    text = render_tap_report(session, fmt, lang, show_secrets)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write report {path}: {exc.strerror or exc}") from exc
    return text
