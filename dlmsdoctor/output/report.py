"""Diagnostic reports from a Session: one model, three renderings (Markdown, HTML, JSON).

``build_report`` turns a Session into a plain JSON-able document (schema ``dlmsdoctor.report``):
the JSON report is that document, and the Markdown and HTML renderers only lay it out, so the three
formats always carry the same facts. Figures are computed from the recorded data (pings,
connections, the meter's own UA and AARE decoded again with the codec), not copied from screen
text, and every cause points to frames in the appendix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dlmsdoctor import __version__
from dlmsdoctor.diagnosis.registry import BENIGN
from dlmsdoctor.diagnosis.steps import RECORDED_SUMMARY, RECOVERED_BY, frame_owners
from dlmsdoctor.diagnosis.words import duration, plain_error
from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.output import i18n
from dlmsdoctor.output.i18n import t
from dlmsdoctor.output.i18n_notes import (
    codec_problem,
    evidence_note,
    note_es,
    summary_es,
    value_es,
)
from dlmsdoctor.output.i18n_serial import profile_line, serial_target
from dlmsdoctor.output.report_frames import FrameNote, annotate
from dlmsdoctor.private_files import write_private
from dlmsdoctor.session import Cause, ConnectionRecord, Evidence, Session

SCHEMA = "dlmsdoctor.report"
SCHEMA_VERSION = 1
FORMATS = ("md", "html", "json")
MASK = "********"
_SECRET_WORDS = ("password", "passwd", "secret", "key", "auth_value", "pin")


class ReportError(ValueError):
    """A report that cannot be made as asked (unknown format or language, unwritable path)."""


# --------------------------------------------------------------------------- small helpers


def _ms(seconds: float | None, lang: str) -> str:
    """A duration for people (the diagnosis' own formatter: the same rounding everywhere)."""
    return duration(seconds, lang)


def _server_text(logical: object, physical: object, size: object, lang: str) -> str:
    where = f"{logical}" if physical is None else f"{logical}/{physical}"
    return f"{where} ({t(lang, 'byte_address', n=size)})"


def _mask_settings(value: Any, show_secrets: bool, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask_settings(v, show_secrets, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_settings(v, show_secrets, key) for v in value]
    if not show_secrets and any(w in key.lower() for w in _SECRET_WORDS) and value:
        return MASK
    return value


def _rounded(value: Any) -> Any:
    """Floats to microseconds, like every other time in the document (no 0.0018414149999443907)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _credential_names(session: Session) -> list[str]:
    names: list[str] = []
    for key in ("credential_sets", "credentials"):
        value = session.settings.get(key)
        if isinstance(value, list):
            names += [str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value]
    names += [x.credential for x in session.logins if x.credential]
    if session.diagnosis and session.diagnosis.profile and session.diagnosis.profile.credential:
        names.append(session.diagnosis.profile.credential)
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- sections


def _frame_doc(note: FrameNote, lang: str, owners: dict[int, str],
               session: Session) -> dict[str, Any]:
    owner = owners.get(note.index, note.step_id)
    step = session.step(note.step_id)
    step_text = _step_title(note.step_id, step.title if step else note.step_id, lang)
    if owner != note.step_id:
        step_text = t(lang, "frame_owner", owner=_step_title(owner, owner, lang), step=step_text)
    return {
        "index": note.index,
        "conn": note.conn_id,
        "dir": note.direction.value,
        "at": round(note.at, 6),
        "step": owner,
        "recorded_step": note.step_id,
        "step_text": step_text if note.step_id else "-",
        "kind": note.kind,
        "summary": summary_es(note.summary) if lang == "es" else note.summary,
        "hex": note.hex,
        "short_hex": note.short_hex(),
        "fields": [
            {
                "offset": f.offset,
                "length": f.length,
                "depth": f.depth,
                "label": f.label,
                "hex": f.hex_in(note.data),
                "meaning": f.meaning,
            }
            for f in note.fields
        ],
        "problems": _problems_in_words(note, lang),
        "masked_bytes": note.secret_count,
    }


def _problems_in_words(note: FrameNote, lang: str) -> list[str]:
    """A frame's codec findings as "code: words", the words for its direction and language (a
    bad FCS on the meter's frame is damage on the way, not a frame the meter drops)."""
    out = []
    for problem in note.problems:
        code, text = problem_parts(problem)
        words, _ = codec_problem(code, text, note.direction is Direction.TX, lang)
        out.append(f"{code}: {words}")
    return out


def _ping_doc(session: Session, lang: str) -> dict[str, Any] | None:
    if not session.pings:
        return None
    rtts: list[float] = []
    for ping in session.pings:
        if ping.rtt is not None:
            rtts.append(ping.rtt)
        elif ping.reply_at is not None:
            rtts.append(ping.reply_at - ping.at)
    sent, received = len(session.pings), len(rtts)
    loss = (sent - received) / sent
    doc: dict[str, Any] = {"sent": sent, "received": received, "loss": round(loss, 4)}
    if rtts:
        doc.update(
            rtt_min=round(min(rtts), 6),
            rtt_avg=round(sum(rtts) / len(rtts), 6),
            rtt_max=round(max(rtts), 6),
        )
        doc["text"] = t(
            lang,
            "ping_line",
            sent=sent,
            received=received,
            loss=i18n.number(loss * 100, lang, 0),
            rmin=i18n.number(min(rtts) * 1000, lang),
            ravg=i18n.number(sum(rtts) / len(rtts) * 1000, lang),
            rmax=i18n.number(max(rtts) * 1000, lang),
        )
    else:
        doc["text"] = t(lang, "ping_none", sent=sent)
    return doc


def _close_text(conn: ConnectionRecord, lang: str, kind: str = "probe") -> str:
    if conn.failed:
        return t(lang, "failed_conn",
                 reason=i18n.pick(i18n.CONNECT_FAILED, conn.failed, lang, conn.failed))
    how = conn.close_how
    if how is None:
        return t(lang, "close_open")
    if how is CloseHow.RST:
        return i18n.tk(lang, "close_rst_peer" if conn.closed_by_peer else "close_rst_local", kind)
    if conn.closed_by_peer:
        return t(lang, "close_fin_peer")
    return i18n.tk(lang, "close_timeout" if how is CloseHow.TIMEOUT else "close_local", kind)


def _connections_doc(session: Session, lang: str) -> list[dict[str, Any]]:
    out = []
    for conn in session.connections:
        frames = [f for f in session.frames if f.conn_id == conn.id]
        tx = [f for f in frames if f.direction is Direction.TX]
        rx = [f for f in frames if f.direction is Direction.RX]
        out.append(
            {
                "id": conn.id,
                "host": conn.host,
                "port": conn.port,
                "opened_at": conn.opened_at,
                "connect_time": conn.connect_time,
                "connect_time_text": _ms(conn.connect_time, lang),
                "failed": conn.failed,
                "closed_at": conn.closed_at,
                "close_how": conn.close_how.value if conn.close_how else None,
                "closed_by_peer": conn.closed_by_peer,
                "close_text": _close_text(conn, lang, session.kind),
                "frames_tx": len(tx),
                "frames_rx": len(rx),
                "bytes_tx": sum(len(f.data) for f in tx),
                "bytes_rx": sum(len(f.data) for f in rx),
                **_connection_note(conn, lang),
            }
        )
    return out


def _connection_note(conn: ConnectionRecord, lang: str) -> dict[str, Any]:
    """The link's note on a connection, in ``lang`` (recorded in English)."""
    if lang == "en" or not conn.note:
        return {"note": conn.note}
    where = f"[{conn.host}]:{conn.port}" if ":" in conn.host else f"{conn.host}:{conn.port}"
    template = i18n.CONNECT_NOTE_ES.get(conn.failed or "")
    text = template.format(where=where, host=conn.host) if template else note_es(conn.note)
    return {"note": text or "", "recorded_note": conn.note, "note_translated": bool(text)}


def _link_doc(notes: list[FrameNote], lang: str) -> dict[str, list[dict[str, Any]]]:
    """What the meter itself said about the link and the association, decoded from its frames."""
    negotiated, association = [], []
    for note in notes:
        facts = note.facts
        if note.direction is not Direction.RX:
            continue
        params = facts.get("params")
        src = facts.get("src") if isinstance(facts.get("src"), dict) else {}
        assert isinstance(src, dict)
        if facts.get("frame_type") == "UA" and isinstance(params, dict):
            server = _server_text(src.get("logical"), src.get("physical"), src.get("size"), lang)
            negotiated.append(
                {
                    "frame": note.index,
                    "server": server,
                    **{
                        k: params.get(k)
                        for k in ("max_info_tx", "max_info_rx", "window_tx", "window_rx")
                    },
                    "text": t(
                        lang,
                        "negotiated_line",
                        frame=note.index,
                        server=server,
                        tx=params.get("max_info_tx"),
                        rx=params.get("max_info_rx"),
                        wtx=params.get("window_tx"),
                        wrx=params.get("window_rx"),
                    ),
                }
            )
        if facts.get("apdu_type") == "AARE":
            result = str(facts.get("result_name", facts.get("result", "?")))
            result = i18n.pick(i18n.AARE_RESULT, result, lang, result)
            if facts.get("result") not in (0, None):
                result += f" ({facts.get('diagnostic_source', '')}: "
                result += f"{facts.get('diagnostic_name', facts.get('diagnostic', ''))})"
            association.append(
                {
                    "frame": note.index,
                    "result": result,
                    "context": facts.get("context"),
                    "dlms_version": facts.get("dlms_version"),
                    "max_pdu_size": facts.get("max_pdu_size"),
                    "text": t(
                        lang,
                        "association_line" if facts.get("max_pdu_size") is not None
                        else "association_line_no_pdu",
                        frame=note.index,
                        result=result,
                        context=facts.get("context") or "?",
                        version=facts.get("dlms_version") or "?",
                        pdu=facts.get("max_pdu_size"),
                    ),
                }
            )
    return {"negotiated": negotiated, "association": association}


def _finding_text(code: str, message: str, lang: str) -> str:
    """A probe finding in the report's language (Spanish: by code; unknown codes as recorded)."""
    if lang != "es":
        return plain_error(message)
    if code in i18n.FINDING_ES:
        return i18n.FINDING_ES[code]
    spanish = i18n.CAUSE_ES.get(code)
    return spanish[0] if spanish else message


def _finding_translated(code: str, lang: str) -> bool:
    return lang == "en" or code in i18n.FINDING_ES or code in i18n.CAUSE_ES


def _step_title(step_id: str, title: str, lang: str) -> str:
    return i18n.step_title(step_id, title, lang)


_KEY_VALUE = re.compile(r"\b([a-z][a-z_]+)=")


def _english_summary(summary: str) -> str:
    """The engine's one-liner with its ``key=value`` figures said with labels."""
    return _KEY_VALUE.sub(
        lambda m: f"{i18n.pick(i18n.FIGURE, m[1], 'en', m[1].replace('_', ' '))} ", summary)


def _rungs_doc(session: Session, lang: str) -> list[dict[str, Any]]:
    out = []
    for step in session.steps:
        figures = [
            [i18n.pick(i18n.FIGURE, key, lang),
             value_es(i18n.figure_value(key, value, lang)) if lang == "es"
             else i18n.figure_value(key, value, lang)]
            for key, value in step.details.items()
            if not isinstance(value, dict) and key not in i18n.FIGURE_HIDDEN
            and value is not None and value != [] and value != ""
        ]
        # The recorded one-liner is the engine's English: Spanish says the findings by code
        # (those without Spanish stay in the findings list, marked) and why a step was skipped.
        notes = [
            _finding_text(f.code, f.message, lang)
            for f in session.findings
            if f.step_id == step.id and _finding_translated(f.code, lang)
        ]
        reason = step.details.get("reason")
        settled = note_es(step.summary) if RECORDED_SUMMARY in step.details else None
        if lang == "es" and settled is not None:
            summary = settled  # the diagnosis said it anew: its words, not the findings'
        elif lang == "es":
            if isinstance(reason, str):
                notes.insert(0, i18n.pick(i18n.SKIP_REASON, reason, lang, reason))
            summary = "; ".join(dict.fromkeys(notes))
        else:
            summary = plain_error(_english_summary(step.summary))
        rescuer = step.details.get(RECOVERED_BY)
        if step.status.value == "recovered" and isinstance(rescuer, str):
            by = session.step(rescuer)
            said = t(lang, "recovered_by",
                     step=_step_title(rescuer, by.title if by else rescuer, lang))
            summary = f"{said}; {summary}" if summary else said
        not_run = step.status.value in ("skipped", "unavailable", "pending")
        out.append(
            {
                "id": step.id,
                "layer": step.layer,
                "layer_label": i18n.pick(i18n.LAYER, step.layer, lang, step.layer),
                "title": _step_title(step.id, step.title, lang),
                "status": step.status.value,
                "status_label": i18n.pick(i18n.STEP_STATUS, step.status.value, lang),
                "started": step.started,
                "finished": step.finished,
                "duration": step.duration,
                "duration_text": "-" if not_run else _ms(step.duration, lang),
                "summary": summary,
                "notes": notes,
                "figures": figures,
            }
        )
    return out


def _evidence_doc(
    ev: Evidence, notes: dict[int, FrameNote], session: Session, lang: str,
    owners: dict[int, str],
) -> dict[str, Any]:
    text, translated = evidence_note(ev.note, ev.finding, lang)
    doc: dict[str, Any] = {
        "note": text,
        "recorded_note": ev.note,
        "note_translated": translated,
        "frame": ev.frame,
        "step": ev.step,
        "finding": ev.finding,
    }
    note = notes.get(ev.frame) if ev.frame is not None else None
    if note is not None:
        doc["frame_ref"] = {
            "index": note.index,
            "dir": note.direction.value,
            "at": round(note.at, 6),
            "conn": note.conn_id,
            "summary": summary_es(note.summary) if lang == "es" else note.summary,
            "short_hex": note.short_hex(),
            "problems": _problems_in_words(note, lang),
            "step": owners.get(note.index, note.step_id),
        }
    if ev.step:
        step = session.step(ev.step)
        if step is not None:
            doc["step_title"] = _step_title(step.id, step.title, lang)
    return doc


def _dedupe_evidence(items: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """The same note on several frames is said once (the other frames named); a frame problem
    already quoted under this cause is not quoted again (a busy bridge's long text, 3 times)."""
    out: list[dict[str, Any]] = []
    by_note: dict[str, dict[str, Any]] = {}
    seen_problems: set[str] = set()
    for item in items:
        first = by_note.get(item["note"])
        if first is not None and item.get("frame") is not None:
            first.setdefault("also_frames", []).append(item["frame"])
            continue
        ref = item.get("frame_ref")
        if ref is not None:
            fresh = [p for p in ref["problems"] if p not in seen_problems]
            seen_problems.update(ref["problems"])
            item["frame_ref"] = {**ref, "problems": fresh}
        by_note.setdefault(item["note"], item)
        out.append(item)
    for item in out:
        if item.get("also_frames"):
            more = ", ".join(f"#{i}" for i in item["also_frames"])
            item["note"] = f"{item['note']} ({t(lang, 'also_frames', frames=more)})"
    return out


def _cause_doc(
    rank: int | None, cause: Cause, notes: dict[int, FrameNote], session: Session, lang: str,
    owners: dict[int, str],
) -> dict[str, Any]:
    spanish = i18n.CAUSE_ES.get(cause.code) if lang == "es" else None
    if spanish is not None:
        title, explanation, actions = spanish
        translated = True
        # a late or slow answer: its title and actions keep this run's figures
        from dlmsdoctor.output.i18n_notes import figured_es

        title = figured_es(cause.title) or title
        figured = [(a.when, figured_es(a.text)) for a in cause.actions]
        if figured and all(text for _, text in figured):
            actions = [(when, text or "") for when, text in figured]
    else:
        title, explanation = cause.title, cause.explanation
        actions = [(a.when, a.text) for a in cause.actions]
        translated = lang == "en"
    return {
        "rank": rank,
        "code": cause.code,
        "note": cause.code in BENIGN,  # an observation, not a fault
        "title": title,
        "confidence": cause.confidence,
        "confidence_pct": round(cause.confidence * 100),
        "whose": cause.whose,
        "whose_label": i18n.pick(i18n.WHOSE, cause.whose, lang),
        "explanation": explanation,
        "recorded_explanation": cause.explanation,
        "translated": translated,
        "evidence": _dedupe_evidence(
            [_evidence_doc(ev, notes, session, lang, owners) for ev in cause.evidence], lang
        ),
        "actions": [{"when": when, "text": text} for when, text in actions],
    }


def _actions_doc(
    causes: list[dict[str, Any]], has_profile: bool, status: str, lang: str
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"now": [], "later": []}
    seen: set[str] = set()
    for cause in causes:
        for action in cause["actions"]:
            if action["text"] in seen:
                continue
            seen.add(action["text"])
            when = "later" if action["when"] == "later" else "now"
            out[when].append(
                {"text": action["text"], "cause": cause["code"], "rank": cause["rank"]}
            )
    if has_profile and status != "ok" and not out["now"]:
        out["now"].append({"text": t(lang, "use_profile"), "cause": None, "rank": None})
    return out


def _profile_doc(session: Session, lang: str) -> dict[str, Any] | None:
    if session.diagnosis is None or session.diagnosis.profile is None:
        return None
    p = session.diagnosis.profile
    server = _server_text(p.server_logical, p.server_physical, p.address_size, lang)
    rows = [
        [t(lang, "profile_host"), f"{p.host}:{p.port}" if p.link == "tcp"
         else profile_line(p, lang)],
        [t(lang, "profile_framing"), p.framing.upper()],
        [t(lang, "profile_server"), server],
        [t(lang, "profile_client"), str(p.client_sap)],
        [t(lang, "profile_auth"), i18n.pick(i18n.AUTH, p.authentication, lang)],
        [t(lang, "profile_credential"), p.credential or "-"],
    ]
    if p.max_info_tx is not None or p.max_info_rx is not None:
        rows.append([t(lang, "profile_info"), f"{p.max_info_tx or '-'}/{p.max_info_rx or '-'}"])
    if p.window_tx is not None or p.window_rx is not None:
        rows.append([t(lang, "profile_window"), f"{p.window_tx or '-'}/{p.window_rx or '-'}"])
    if p.max_pdu_size is not None:
        rows.append([t(lang, "profile_pdu"), str(p.max_pdu_size)])
    one_line = (
        f"{p.framing.upper()}, {server}, SAP {p.client_sap}, "
        f"{i18n.pick(i18n.AUTH, p.authentication, lang)}"
    )
    if p.credential:
        one_line += f", '{p.credential}'"
    from dataclasses import asdict

    return {"values": asdict(p), "rows": rows, "text": one_line}


def _key_figures(doc: dict[str, Any], lang: str) -> list[str]:
    """The few numbers a supervisor asks for: ping, TCP connect, the negotiated link."""
    m = doc["measurements"]
    out = []
    if m["ping"]:
        out.append(f"{t(lang, 'ping')}: {m['ping']['text']}")
    times = [c["connect_time"] for c in m["connections"] if c["connect_time"] is not None]
    if times and "link" not in doc["target"]:  # a serial line's open time is no TCP figure
        out.append(t(lang, "fig_tcp", n=len(m["connections"]),
                     avg=_ms(sum(times) / len(times), lang), worst=_ms(max(times), lang)))
    if m["negotiated"]:
        last = m["negotiated"][-1]
        out.append(t(lang, "fig_link", server=last["server"], tx=last["max_info_tx"],
                     rx=last["max_info_rx"], wtx=last["window_tx"], wrx=last["window_rx"]))
    if m["association"]:
        last = m["association"][-1]
        if last["max_pdu_size"] is None:
            out.append(t(lang, "fig_assoc_no_pdu", result=last["result"]))
        else:
            out.append(t(lang, "fig_assoc", result=last["result"], pdu=last["max_pdu_size"]))
    return out


def _summary_doc(doc: dict[str, Any], session: Session, lang: str) -> list[str]:
    out = [
        i18n.tk(
            lang,
            "sum_run" if session.target.link == "tcp" else "sum_run_serial",
            session.kind,
            source=Path(str(session.settings.get("source") or session.id)).name,
            host=session.target.host,
            port=session.target.port,
            date=i18n.when_text(session.started_at),
            duration=i18n.number(session.duration or 0.0, lang),
            frames=len(session.frames),
            conns=len(session.connections),
        )
    ]
    if session.cancelled:
        out.append(t(lang, "sum_cancelled"))
    works, fails, recovered = partition(doc["rungs"], session)
    if works:
        out.append(t(lang, "sum_works", items="; ".join(works)))
    if recovered:
        out.append(t(lang, "sum_recovered", items="; ".join(recovered)))
    if fails:
        out.append(t(lang, "sum_fails", items="; ".join(fails)))
    figures = _key_figures(doc, lang)
    if figures:
        out.append(t(lang, "sum_figures", items="; ".join(figures)))
    causes = [c for c in doc["diagnosis"]["causes"] if not c["note"]]
    if session.diagnosis is None:
        out.append(t(lang, "sum_no_diag"))
    elif causes:
        top = causes[0]
        out.append(
            t(
                lang,
                "sum_cause",
                conf=top["confidence_pct"],
                whose=top["whose_label"],
                title=top["title"],
            )
        )
    if doc["actions"]["now"]:
        out.append(t(lang, "sum_action", action=doc["actions"]["now"][0]["text"]))
    if doc["profile"] is not None:
        out.append(t(lang, "sum_profile", profile=doc["profile"]["text"]))
    elif session.diagnosis is not None:
        out.append(t(lang, "sum_no_profile"))
    return out


def partition_ids(rungs: list[dict[str, Any]], session: Session) -> tuple[list[str], list[str],
                                                                           list[str]]:
    """(works, does not work, recovered) rung ids: each rung in one list at most. A release
    with nothing to release (no frame sent) is no evidence that anything works."""
    released = any(f.step_id == "release" and f.direction.value == "tx" for f in session.frames)
    works = [r["id"] for r in rungs if r["status"] in ("ok", "warning")
             and (r["id"] != "release" or released)]
    recovered = [r["id"] for r in rungs if r["status"] == "recovered"]
    fails = [r["id"] for r in rungs if r["status"] in ("failed", "error")]
    return works, fails, recovered


def partition(rungs: list[dict[str, Any]], session: Session) -> tuple[list[str], list[str],
                                                                        list[str]]:
    """The same partition as ``partition_ids``, by the rungs' labels."""
    title = {r["id"]: r["title"] for r in rungs}
    works, fails, recovered = partition_ids(rungs, session)
    return ([title[i] for i in works], [title[i] for i in fails],
            [title[i] for i in recovered])


# --------------------------------------------------------------------------- the document


def build_report(session: Session, lang: str = "en", show_secrets: bool = False) -> dict[str, Any]:
    """The report document (what ``--format json`` writes, and what md/html lay out)."""
    if lang not in i18n.LANGS:
        raise ReportError(f"unknown language {lang!r}: use one of {', '.join(i18n.LANGS)}")
    notes = [annotate(f, show_secrets) for f in session.frames]
    by_index = {n.index: n for n in notes}
    diagnosis = session.diagnosis
    status = diagnosis.status if diagnosis else "unknown"
    headline = diagnosis.headline if diagnosis else t(lang, "sum_no_diag")
    owners = frame_owners(session)
    # The diagnosis ranks them (notes such as "ICMP filtered" after faults, whatever their
    # confidence): keep its order; notes are observations, not ranked causes.
    causes = []
    rank = 0
    for cause in diagnosis.causes if diagnosis else []:
        is_note = cause.code in BENIGN
        rank += 0 if is_note else 1
        causes.append(_cause_doc(None if is_note else rank, cause, by_index, session, lang,
                                 owners))
    profile = _profile_doc(session, lang)
    headline_es = None
    faults = [c for c in causes if not c["note"]]
    if lang == "es" and diagnosis and (status == "cancelled" or (faults and
                                                                 faults[0]["translated"])):
        # The recorded headline is English free text: say it from the top cause and profile.
        if status == "cancelled":
            headline_es = t(lang, "headline_cancelled")
            if profile is not None:
                headline_es += " " + t(lang, "sum_profile", profile=profile["text"])
            elif faults and faults[0]["translated"]:
                headline_es += f" {faults[0]['title']}."
        else:
            headline_es = faults[0]["title"]
            if profile is not None:
                headline_es += t(lang, "headline_profile", profile=profile["text"])
    elif lang == "es" and diagnosis and not faults and profile is not None:
        headline_es = t(lang, "sum_profile", profile=profile["text"])
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "lang": lang,
        "report_version": __version__,
        "secrets_shown": show_secrets,
        "session": {
            "id": session.id,
            "tool_version": session.tool_version,
            "started_at": session.started_at,
            "finished_at": session.finished_at,
            "duration": session.duration,
            "cancelled": session.cancelled,
            "kind": session.kind,  # probe, tap, capture: what the words say it shows
        },
        "target": {
            "host": session.target.host,
            "port": session.target.port,
            "framing": session.target.framing,
            "server_address": session.target.server_address,
            "address_size": session.target.address_size,
            "serial_number": session.target.serial_number,
            # serial links only (issue 11): TCP reports keep their keys unchanged
            **serial_target(session),
        },
        "status": {
            "code": status,
            "label": i18n.pick(i18n.STATUS, status, lang),
            "headline": headline_es or headline,
            "recorded_headline": headline,
        },
        "rungs": _rungs_doc(session, lang),
        "measurements": {
            "ping": _ping_doc(session, lang),
            "connections": _connections_doc(session, lang),
            **_link_doc(notes, lang),
        },
        "diagnosis": {"causes": causes},
        "profile": profile,
        "settings": _rounded(_mask_settings(session.settings, show_secrets)),
        "settings_text": settings_rows(_mask_settings(session.settings, show_secrets), lang),
        "credential_sets": _credential_names(session),
        "logins": [
            {
                "at": x.at,
                "step": x.step_id,
                "credential": x.credential,
                "client_sap": x.client_sap,
                "mechanism": x.mechanism,
                "outcome": x.outcome,
                "diagnostic": x.diagnostic,
                "text": t(
                    lang,
                    "login_row" if x.credential else "login_row_sap",
                    at=i18n.number(x.at, lang, 3),
                    credential=x.credential,
                    sap=x.client_sap,
                    mechanism=i18n.pick(i18n.AUTH, x.mechanism, lang),
                    outcome=i18n.pick(i18n.LOGIN_OUTCOME, x.outcome, lang)
                    + (f" ({x.diagnostic})" if x.diagnostic else ""),
                ),
            }
            for x in session.logins
        ],
        "identity": _mask_settings(session.identity, show_secrets),
        "identity_text": [
            [i18n.pick(i18n.FIGURE, k, lang, k.replace("_", " ")), text]
            for k, text in flatten(_mask_settings(session.identity, show_secrets))
        ],
        "findings": [
            {
                "step": f.step_id,
                "code": f.code,
                "severity": f.severity,
                "message": f.message,
                "severity_label": i18n.pick(i18n.SEVERITY, f.severity, lang),
                "text": _finding_text(f.code, f.message, lang),
                "step_title": _step_title(f.step_id, f.step_id, lang),
                "translated": _finding_translated(f.code, lang),
                "at": f.at,
                "frames": f.frames,
            }
            for f in session.findings
        ],
        "frames": [_frame_doc(n, lang, owners, session) for n in notes],
    }
    doc["actions"] = _actions_doc(causes, profile is not None, status, lang)
    works, fails, recovered = partition_ids(doc["rungs"], session)
    doc["partition"] = {"works": works, "fails": fails, "recovered": recovered}
    doc["summary"] = _summary_doc(doc, session, lang)
    # Who TX and RX are depends on the kind: dlmsdoctor (probe), the poller (tap), the
    # recorded client (capture); the meter or bridge answers.
    from dlmsdoctor.output.i18n_tap import roles

    doc["roles"] = roles(session.kind, lang)
    if session.kind == "tap" or (session.kind == "capture"
                                 and isinstance(session.settings.get("tap"), dict)):
        # a relayed poller, or another client's capture read as one: the tap's sections
        from dlmsdoctor.output.report_tap import tap_sections

        tap_sections(doc, session, lang)
    return doc


# ------------------------------------------------- layout shared by the Markdown and HTML renderers
# Both renderers lay out the same document in the same order; what a table holds, how a frame is
# headed and in which order evidence reads are decided here, so the two formats cannot drift. The
# renderers only escape and mark up.

RUNG_COLUMNS = ("layer", "check", "result", "time", "details")
CONNECTION_COLUMNS = ("connection", "opened", "connect_time", "closed", "traffic")


def column_heads(columns: tuple[str, ...], lang: str) -> list[str]:
    return [t(lang, c) for c in columns]


def _numbers(text: str) -> set[str]:
    """The numbers in a text, decimal commas read as points (the Spanish figures)."""
    return {n.replace(",", ".") for n in re.findall(r"\d+(?:[.,]\d+)?", text)}


def _said(number: str, said: set[str]) -> bool:
    """``number`` is already in the summary, perhaps rounded otherwise (15 ms and 15.1 ms)."""
    for other in said:
        tolerance = 0.05 if "." in number and "." in other else 0.5
        if abs(float(number) - float(other)) <= tolerance + 1e-9:
            return True
    return False


def rung_cells(rung: dict[str, Any]) -> list[str]:
    """One row of the rungs table, in RUNG_COLUMNS order (the result cell is the status label)."""
    said = _numbers(rung["summary"])
    figures = ", ".join(
        f"{k} {v}" for k, v in rung["figures"]
        if not (_numbers(str(v)) and all(_said(n, said) for n in _numbers(str(v))))
        and f"{k} {v}" not in rung["summary"] and str(v) not in rung["summary"]
    )
    details = "; ".join(x for x in (rung["summary"], figures) if x)
    return [rung["layer_label"], rung["title"], rung["status_label"], rung["duration_text"],
            details]


def connection_cells(conn: dict[str, Any], lang: str) -> list[str]:
    """One row of the connections table, in CONNECTION_COLUMNS order."""
    if conn.get("client"):  # a tap's connection: "#1 poller → meter"
        cells = connection_cells({**conn, "client": None}, lang)
        number, _, where = cells[0].partition(" ")
        return [f"{number} {conn['client']} → {where}", *cells[1:]]
    opened = conn["opened_at"]
    return [
        f"#{conn['id']} {conn['host']}" + (f":{conn['port']}" if conn["port"] else ""),
        "-" if opened is None else f"{i18n.number(opened, lang, 3)} s",
        conn["connect_time_text"],
        conn["close_text"],
        f"{conn['frames_tx']}/{conn['frames_rx']} ({conn['bytes_tx']}/{conn['bytes_rx']})",
    ]


def _value_text(value: Any) -> str:
    """One value as people read it: a list of credential sets by name, never a repr."""
    if isinstance(value, dict):
        if "name" in value:
            return str(value["name"])
        return ", ".join(f"{k.replace('_', ' ')} {_value_text(v)}" for k, v in value.items()
                         if v is not None and v != "")
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(v) for v in value)
    return str(value)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as (dotted.key, text) pairs; a list is one comma-separated value."""
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, _value_text(value))]


def _setting_value(key: str, value: Any, lang: str) -> str | None:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return t(lang, "yes" if value else "no")
    seconds = (key in i18n.SETTING_SECONDS or "timeout" in key or key.endswith(("_wait", "_s"))
               or key.startswith("facts.delays."))
    if seconds and isinstance(value, int | float):
        return duration(float(value), lang)
    if isinstance(value, float):
        return i18n.number(value, lang, 3).rstrip("0").rstrip(",.") or "0"
    if key == "facts.server" and isinstance(value, dict):
        where = str(value.get("logical", "?"))
        if value.get("physical") is not None:
            where += f"/{value['physical']}"
        return f"{where} ({t(lang, 'byte_address', n=value.get('size', '?'))})"
    if key == "facts.hdlc_params" and isinstance(value, dict):
        return (f"{t(lang, 'profile_info')} {value.get('max_info_tx', '-')}/"
                f"{value.get('max_info_rx', '-')}, {t(lang, 'profile_window')} "
                f"{value.get('window_tx', '-')}/{value.get('window_rx', '-')}")
    if key == "mechanism":
        return i18n.pick(i18n.AUTH, str(value), lang, str(value))
    if key == "stopped_reason":
        return i18n.pick(i18n.SKIP_REASON, str(value), lang, str(value).replace("_", " "))
    if isinstance(value, dict):
        rows = [f"{_label(f'{key}.{k}', k, lang)} {text}"
                for k, v in value.items()
                if (text := _setting_value(f"{key}.{k}", v, lang)) is not None]
        return ", ".join(rows) or None
    return _value_text(value)


def _label(dotted: str, key: str, lang: str) -> str:
    if dotted in i18n.SETTING:
        return i18n.pick(i18n.SETTING, dotted, lang)
    return i18n.pick(i18n.FIGURE, key, lang, key.replace("_", " "))


_TCP_ONLY_SETTINGS = frozenset({"port", "connect_timeout"})


def settings_rows(settings: dict[str, Any], lang: str) -> list[list[str]]:
    """The run's settings as [label, value] rows people read: labels in ``lang``, times as
    durations, yes/no, credential sets by name; values not set are left out."""
    rows: list[list[str]] = []
    serial = settings.get("link") not in (None, "tcp")
    for key, value in settings.items():
        if serial and key in _TCP_ONLY_SETTINGS:
            continue  # a serial line has no TCP port or connect timeout
        if key == "facts" and isinstance(value, dict):
            items = [(f"facts.{k}", v) for k, v in value.items()]
        else:
            items = [(key, value)]
        for dotted, item in items:
            text = _setting_value(dotted, item, lang)
            if text is None:
                continue
            label = i18n.pick(i18n.SETTING, dotted, lang,
                              dotted.removeprefix("facts.").replace("_", " "))
            rows.append([label, text])
    return rows


def evidence_order(note: str, where: str, lang: str) -> str:
    """The note (in the report's language), then the frame it cites."""
    return f"{note} — {where}" if note else where


def frame_heading(frame: dict[str, Any], lang: str) -> str:
    """An appendix frame's heading (plain text: the HTML renderer escapes it whole)."""
    where = frame.get("route") or (  # a tap's frame: which poller, which way
        f"{t(lang, 'step')} {frame.get('step_text') or frame['step'] or '-'}")
    return (
        f"#{frame['index']} {frame['dir'].upper()} t+{i18n.number(frame['at'], lang, 6)} s · "
        f"{t(lang, 'connection').lower()} {frame['conn']} · {where}"
    )


def problem_parts(problem: str) -> tuple[str, str]:
    """A frame problem ``"code: text"`` as (code, text)."""
    return problem.split(":")[0], problem.split(":", 1)[-1].strip()


def about_lines(doc: dict[str, Any]) -> list[str]:
    """The closing lines: which tool and session made the report, when, and how to check it."""
    lang, s = doc["lang"], doc["session"]
    return [
        i18n.tk(lang, "tool_line", str(s.get("kind") or "probe"),
                report_version=doc["report_version"], session=s["id"],
                tool_version=s["tool_version"]),
        t(lang, "times_line", started=i18n.when_text(s["started_at"]),
          finished=i18n.when_text(s["finished_at"]),
          duration=i18n.number(s["duration"] or 0.0, lang)),
        t(lang, "proof"),
    ]


def render_report(
    session: Session, fmt: str = "md", lang: str = "en", show_secrets: bool = False
) -> str:
    """The report as text in ``fmt`` (md, html or json)."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    doc = build_report(session, lang, show_secrets)
    if fmt == "json":
        from dlmsdoctor.output.report_json import render_json

        return render_json(doc)
    if fmt == "html":
        from dlmsdoctor.output.report_html import render_html

        return render_html(doc)
    from dlmsdoctor.output.report_md import render_md

    return render_md(doc)


def write_report(
    session: Session,
    path: str | Path | None,
    fmt: str = "md",
    lang: str = "en",
    show_secrets: bool = False,
) -> str:
    """Render and write the report (``path`` None: only return it). Returns the text."""
    text = render_report(session, fmt, lang, show_secrets)
    if path is not None:
        try:
            write_private(path, text)  # 0600: identities, and secrets when asked for
        except OSError as exc:
            raise ReportError(f"cannot write report {path}: {exc.strerror or exc}") from exc
    return text
