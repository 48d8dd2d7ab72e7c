"""The report's own sections for a tap session (``Session.kind == "tap"``), and for a capture of
another client, read by the tap's rules (``kind == "capture"``: its first line says what the
capture shows; there is no tap, so the client's own close is the poller's).

A tap has no ladder of steps and dlmsdoctor is not a party: TX is the user's poller, RX the
meter. ``report.build_report`` calls ``tap_sections`` for such a session, and the shared
renderers lay out what it sets: the executive summary (what was relayed, between what), the
meter's answer times and refusals per service in the table a probe uses for its steps, who
closed each connection (poller, meter side, or the tap when it stopped), the poller of each
frame, and the settings without the counts (they have their section).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dlmsdoctor.events import CloseHow
from dlmsdoctor.output import i18n
from dlmsdoctor.session import ConnectionRecord, Session


def _s(lang: str, key: str, **values: object) -> str:
    from dlmsdoctor.output.i18n_tap import TAP_S

    entry = TAP_S[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def _ms(value: object, lang: str) -> str:
    if not isinstance(value, int | float):
        return "-"
    if value >= 1.0:
        return f"{i18n.number(value, lang, 2)} s"
    return f"{i18n.number(value * 1000, lang)} ms"


def close_text(conn: ConnectionRecord, lang: str, kind: str = "tap") -> str:
    """Who closed a relayed connection first: the poller, the meter side, or the tap (in a
    capture of another client there is no tap: the client's own close is the poller's)."""
    capture = kind == "capture"
    if conn.failed:
        return _s(lang, "close_failed_capture" if capture else "close_failed",
                  reason=i18n.pick(i18n.CONNECT_FAILED, conn.failed, lang, conn.failed))
    how = conn.close_how
    if how is None:
        return _s(lang, "close_end_capture") if capture else i18n.t(lang, "close_open")
    if how is CloseHow.LOCAL and not capture:
        return _s(lang, "closed_tap")
    rst = "rst" if how is CloseHow.RST else "fin"
    return _s(lang, f"close_{rst}_{'meter' if conn.closed_by_peer else 'poller'}")


def _host(client: str) -> str:
    host = client.rpartition(":")[0] if ":" in client else client
    return host or "?"


def _summary(doc: dict[str, Any], session: Session, tap: dict[str, Any], lang: str
             ) -> list[str]:
    frames = tap.get("frames", {})
    if session.kind == "capture":  # what the capture shows (the report's own first line)
        from dlmsdoctor.output.report import _key_figures

        lines = doc["summary"][:1]
        figures = _key_figures(doc, lang)
        if figures:
            lines.append(i18n.t(lang, "sum_figures", items="; ".join(figures)))
    else:
        lines = [_s(lang, "sum_tap", target=f"{session.target.host}:{session.target.port}",
                    started=i18n.when_text(session.started_at),
                    duration=i18n.number(session.duration or 0.0, lang, 1),
                    connections=tap.get("connections_total", tap.get("connections", 0)),
                    poller=frames.get("poller", 0), meter=frames.get("meter", 0))]
    pollers = Counter(_host(c.client) for c in session.connections if c.client)
    if pollers:
        lines.append(_s(lang, "pollers", items="; ".join(
            _s(lang, "poller_item", host=host, n=n) for host, n in pollers.items())))
    causes = [c for c in doc["diagnosis"]["causes"] if not c["note"]]
    if causes:
        top = causes[0]
        lines.append(_s(lang, "sum_cause", confidence=top["confidence_pct"],
                        whose=top["whose_label"], title=top["title"]))
        now = doc["actions"]["now"]
        if now:
            lines.append(_s(lang, "sum_first_action", action=now[0]["text"]))
    elif session.diagnosis is not None:
        lines.append(_s(lang, "sum_ok_capture" if session.kind == "capture" else "sum_ok"))
    total, kept = tap.get("frames_total", 0), tap.get("frames_kept", 0)
    if total and kept < total:
        lines.append(_s(lang, "sum_kept", kept=kept, total=total))
    return lines


def _meter_rows(tap: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The meter side seen from the poller's traffic, as rows of the steps table."""
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


def _headline(session: Session, doc: dict[str, Any], tap: dict[str, Any], lang: str) -> str:
    """The headline in ``lang`` when no cause gives it (a clean run, or no traffic)."""
    frames = tap.get("frames", {})
    relayed = sum(frames.values()) if isinstance(frames, dict) else 0
    capture = "_capture" if session.kind == "capture" else ""
    if not relayed:
        return _s(lang, "headline_idle" + capture)
    logins = tap.get("logins", {})
    return _s(lang, "headline_ok" + capture, frames=relayed,
              logins=logins.get("accepted", 0) if isinstance(logins, dict) else 0)


def _settings_rows(session: Session, lang: str) -> list[list[str]]:
    """What the tap was asked to do (the counts and answer times have their own section)."""
    from dlmsdoctor.output.i18n_tap import TAP_SETTING, TAP_STOPPED
    from dlmsdoctor.output.report import _setting_value

    rows = []
    for key, label in TAP_SETTING.items():
        value = session.settings.get(key)
        if key == "stopped_reason" and isinstance(value, str):
            text: str | None = i18n.pick(TAP_STOPPED, value, lang, value)
        else:
            text = _setting_value(key, value, lang)
        if text is not None:
            rows.append([label.get(lang) or label["en"], text])
    return rows


def _figures(code: str, session: Session, lang: str) -> str:
    """The figures of a cause's findings in ``lang`` (the catalogue's explanation is general;
    the recorded one is English): the pace of failed logins and the time to a lockout, the
    answer time against the poller's timeout."""
    found = [f for f in session.findings if f.code == code]
    if not found:
        return ""
    if code in ("tap.poller.login_retries", "tap.poller.login_failed"):
        d = found[-1].data  # the latest stage says it all
        failures, left = int(d.get("failures") or 0), int(d.get("left") or 0)
        limit = failures + left if left > 0 else 3
        pace = d.get("pace")
        text = _s(lang, "fig_logins", failures=failures, sap=d.get("client_sap", "?"),
                  diag=d.get("diagnostic", "?"))
        if isinstance(pace, int | float):
            text += _s(lang, "fig_pace", pace=_ms(pace, lang))
        if isinstance(pace, int | float) and left > 0:
            return text + _s(lang, "fig_lock_in", limit=limit, time=_ms(pace * left, lang))
        if left > 0:
            return text + _s(lang, "fig_lock_left", left=left, limit=limit)
        return text + _s(lang, "fig_locked", limit=limit)
    if code == "tap.poller.timeout_too_short":
        d = found[0].data
        return _s(lang, "fig_timeout", service=d.get("service", "?"),
                  answer=_ms(d.get("answer_time"), lang), waited=_ms(d.get("waited"), lang))
    return ""


def _once(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """One line per distinct negotiation (a poller that reconnects every poll repeats the same
    UA and AARE all day): the first, with how many times it was seen and its frames."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in items:
        key = tuple(str(item.get(k)) for k in keys)
        first = out.get(key)
        if first is None:
            out[key] = {**item, "count": 1, "frames": [item["frame"]]}
        else:
            first["count"] += 1
            first["frames"].append(item["frame"])
    for item in out.values():
        if item["count"] > 1:
            item["text"] += f" (×{item['count']})"
    return list(out.values())


def tap_sections(doc: dict[str, Any], session: Session, lang: str) -> None:
    """Fill ``doc`` (``build_report``'s document of a tap session) with the tap's sections."""
    tap = session.settings.get("tap", {})
    tap = tap if isinstance(tap, dict) else {}
    doc["rungs"] = _meter_rows(tap, lang)
    doc["summary"] = _summary(doc, session, tap, lang)
    faults = [c for c in doc["diagnosis"]["causes"] if not c["note"]]
    if lang == "es" and session.diagnosis is not None and not faults:
        doc["status"]["headline"] = _headline(session, doc, tap, lang)
    if lang != "en":  # the catalogue's words are general: add this run's figures
        for cause in doc["diagnosis"]["causes"]:
            figures = _figures(cause["code"], session, lang)
            if figures and cause["translated"]:
                cause["explanation"] = f"{cause['explanation']} {figures}".strip()
    m = doc["measurements"]
    m["negotiated"] = _once(m["negotiated"], ("server", "max_info_tx", "max_info_rx",
                                              "window_tx", "window_rx"))
    m["association"] = _once(m["association"], ("result", "context", "dlms_version",
                                                "max_pdu_size"))
    clients = {c.id: c.client for c in session.connections}
    for conn, record in zip(doc["measurements"]["connections"], session.connections,
                            strict=True):
        conn["client"] = record.client or None
        conn["close_text"] = close_text(record, lang, session.kind)
    for frame in doc["frames"]:
        client = clients.get(frame["conn"]) or "?"
        frame["route"] = _s(lang, "route_tx" if frame["dir"] == "tx" else "route_rx",
                            client=client)
    doc["settings_text"] = _settings_rows(session, lang)
    doc["tap"] = {
        "listen": session.settings.get("listen"),
        "pollers": sorted({c.client for c in session.connections if c.client}),
        "connections": tap.get("connections_total", tap.get("connections", 0)),
        "failed_connections": tap.get("failed_connections", {}),
        "frames": tap.get("frames", {}),
        "frames_total": tap.get("frames_total", 0),
        "frames_kept": tap.get("frames_kept", 0),
        "logins": tap.get("logins", {}),
        "answer_times": tap.get("answer_times", {}),
        "refusals": tap.get("refusals", {}),
        "negotiated": tap.get("negotiated", {}),
    }
