"""The Markdown report: plain GitHub-flavoured Markdown a technician can paste into a ticket."""

from __future__ import annotations

from typing import Any

from dlmsdoctor.output import i18n
from dlmsdoctor.output.i18n import t
from dlmsdoctor.output.i18n_serial import target_where
from dlmsdoctor.output.report import (
    CONNECTION_COLUMNS,
    RUNG_COLUMNS,
    about_lines,
    column_heads,
    connection_cells,
    evidence_order,
    frame_heading,
    problem_parts,
    rung_cells,
)

_STATUS_MARK = {"ok": "✅", "degraded": "⚠️", "failed": "❌", "unknown": "❔", "cancelled": "⏹"}
_STEP_MARK = {
    "ok": "✅",
    "warning": "⚠️",
    "failed": "❌",
    "error": "🐞",
    "skipped": "⏭",
    "unavailable": "➖",
    "cancelled": "⏹",
    "pending": "…",
    "running": "…",
    "recovered": "↩️",
}


def _kind(doc: dict[str, Any]) -> str:
    return str(doc.get("session", {}).get("kind") or "probe")


def cell(text: object) -> str:
    """Text safe inside a table cell: markup escaped like a paragraph (meter-supplied text such
    as a logical device name ``DLD<script>``), pipes escaped, line breaks folded."""
    return inline(str(text).replace("\n", " ")).replace("|", "\\|")


def inline(text: object) -> str:
    """Text safe in a paragraph: characters that Markdown would take as markup escaped, except
    well-formed code spans (`dlmsdoctor decode`), kept as code: escaping their backticks
    showed stray backslashes in viewers."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code span, escape everything
        return _escape(str(text))
    out = []
    for i, part in enumerate(parts):
        if not i % 2:
            out.append(_escape(part))
        elif part.strip():
            out.append(f"`{part}`")  # inside a code span nothing is markup
        else:
            out.append("\\`" + _escape(part) + "\\`")
    return "".join(out)


def _escape(text: str) -> str:
    out = text
    for ch in ("\\", "`", "*", "_", "<", ">", "[", "]"):
        out = out.replace(ch, "\\" + ch)
    return out


def fenced(text: object) -> str:
    """Text safe inside a fenced code block: a backtick run cannot close the fence, and a line
    break in recorded text cannot start a line of its own."""
    return str(text).replace("`", "\u02cb").replace("\r", "\\r").replace("\n", "\\n")


def _table(head: list[str], rows: list[list[object]]) -> list[str]:
    lines = [
        "| " + " | ".join(cell(h) for h in head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _frame_ref(ref: dict[str, Any], lang: str) -> str:
    return (
        f"{t(lang, 'frame')} #{ref['index']} {ref['dir'].upper()} "
        f"t+{i18n.number(ref['at'], lang, 3)} s: {inline(ref['summary'])}"
    )


def _evidence_line(ev: dict[str, Any], lang: str) -> str:
    """The note, then the frame (a note without words in this language is marked as recorded
    and put after the frame)."""
    note = inline(ev["note"])
    if not ev.get("note_translated", True) and note:
        note = f"_{t(lang, 'recorded_note')}: {note}_"
    if "frame_ref" in ev:
        ref = ev["frame_ref"]
        head = evidence_order(note, _frame_ref(ref, lang), lang)
        problem = "".join(f"  \n  {t(lang, 'problem')}: {inline(p)}" for p in ref["problems"][:1])
        return f"- {head}  \n  `{ref['short_hex']}`{problem}"
    if ev.get("step_title"):
        return f"- {note} — {t(lang, 'step')}: {inline(ev['step_title'])}"
    return f"- {note}"


def _cause_lines(c: dict[str, Any], heading: str, lang: str) -> list[str]:
    note = "" if c["translated"] else f" _{t(lang, 'recorded_text')}_"
    out = [
        heading,
        "",
        f"{t(lang, 'confidence')}: **{c['confidence_pct']} %** · {t(lang, 'whose')}: "
        f"**{c['whose_label']}** · `{c['code']}`",
        "",
    ]
    if c["explanation"]:
        out += [inline(c["explanation"]) + note, ""]
    if c["evidence"]:
        out += [f"**{t(lang, 'evidence')}:**", ""]
        out += [_evidence_line(ev, lang) for ev in c["evidence"]] + [""]
    return out


def render_md(doc: dict[str, Any]) -> str:
    lang = doc["lang"]
    target = doc["target"]
    status = doc["status"]
    out: list[str] = [
        f"# {t(lang, 'title')}: {target_where(target, lang)}",
        "",
        f"**{t(lang, 'status')}: {_STATUS_MARK.get(status['code'], '')} {status['label']}** — "
        f"{inline(status['headline'])}",
        "",
        f"## {t(lang, 'summary')}",
        "",
    ]
    out += [f"- {inline(s)}" for s in doc["summary"]] + [""]

    out += [f"## {i18n.tk(lang, 'rungs', _kind(doc))}", ""]
    if doc["rungs"]:
        rows: list[list[object]] = []
        for r in doc["rungs"]:
            cells: list[object] = list(rung_cells(r))
            cells[2] = f"{_STEP_MARK.get(r['status'], '')} {cells[2]}"
            rows.append(cells)
        out += _table(column_heads(RUNG_COLUMNS, lang), rows)
    else:
        out += [i18n.tk(lang, "no_steps", _kind(doc)), ""]

    m = doc["measurements"]
    out += [f"### {t(lang, 'figures')}", ""]
    if m["ping"]:
        out += [f"- **{t(lang, 'ping')}**: {m['ping']['text']}"]
    for item in m["negotiated"]:
        out += [f"- **{t(lang, 'negotiated')}**: {inline(item['text'])}"]
    for item in m["association"]:
        out += [f"- **{t(lang, 'association')}**: {inline(item['text'])}"]
    out += [""]
    if m["connections"]:
        out += _table(
            column_heads(CONNECTION_COLUMNS, lang),
            [list(connection_cells(c, lang)) for c in m["connections"]],
        )

    out += [f"## {t(lang, 'diagnosis')}", ""]
    if not doc["diagnosis"]["causes"]:
        out += [t(lang, "sum_no_diag") if status["code"] == "unknown" else t(lang, "none"), ""]
    notes = [c for c in doc["diagnosis"]["causes"] if c["note"]]
    for c in doc["diagnosis"]["causes"]:
        if c["note"]:
            continue
        out += _cause_lines(c, f"### {c['rank']}. {inline(c['title'])}", lang)
    if notes:
        out += [f"### {t(lang, 'notes')}", ""]
        for c in notes:
            out += _cause_lines(c, f"#### {inline(c['title'])}", lang)

    out += [f"## {t(lang, 'actions')}", ""]
    for when in ("now", "later"):
        items = doc["actions"][when]
        if not items:
            continue
        out += [f"### {t(lang, 'actions_now' if when == 'now' else 'actions_later')}", ""]
        out += [f"{i}. {inline(a['text'])}" for i, a in enumerate(items, start=1)] + [""]

    out += [f"## {t(lang, 'profile')}", ""]
    if doc["profile"]:
        out += [i18n.tk(lang, "profile_intro", _kind(doc)), ""]
        out += _table([t(lang, "setting"), t(lang, "value")],
                      [list(r) for r in doc["profile"]["rows"]])
    else:
        out += [i18n.tk(lang, "no_profile", _kind(doc)), ""]

    out += [
        f"## {t(lang, 'settings')}",
        "",
        f"_{t(lang, 'secrets_shown' if doc['secrets_shown'] else 'secrets_masked')}_",
        "",
    ]
    out += [
        f"- **{t(lang, 'credential_sets')}**: "
        + (", ".join(f"`{n}`" for n in doc["credential_sets"]) or t(lang, "none"))
    ]
    for label, value in doc["settings_text"]:
        out.append(f"- {inline(label)}: {inline(value)}")
    out.append("")
    if doc["logins"]:
        out += [f"### {t(lang, 'logins')}", ""]
        out += [f"- {inline(x['text'])}" for x in doc["logins"]] + [""]
    if doc["identity"]:
        out += [f"### {t(lang, 'identity')}", ""]
        out += [f"- {inline(k)}: {inline(v)}" for k, v in doc["identity_text"]] + [""]
    if doc["findings"]:
        out += [f"### {i18n.tk(lang, 'findings', _kind(doc))}", ""]
        for f in doc["findings"]:
            frames = ", ".join(f"#{i}" for i in f["frames"])
            recorded = "" if f["translated"] else f" _{t(lang, 'recorded_text')}_"
            out.append(
                f"- t+{i18n.number(f['at'], lang, 3)} s `{f['code']}` "
                f"({f['severity_label']}): {inline(f['text'])}{recorded}"
                + (f" [{frames}]" if frames else "")
            )
        out.append("")

    out += [f"## {t(lang, 'appendix')}", "", i18n.tk(lang, "appendix_intro", _kind(doc)), ""]
    if not doc["frames"]:
        out += [t(lang, "no_frames"), ""]
    for fr in doc["frames"]:
        out += [
            f"### {frame_heading(fr, lang)}",
            "",
            inline(fr["summary"]),
            "",
            "```",
            fr["hex"],
        ]
        for fld in fr["fields"]:
            raw = f" [{fld['hex']}]" if fld["hex"] else ""
            out.append(
                f"{fld['offset']:>4}+{fld['length']:<4}{'  ' * fld['depth']}"
                + fenced(f"{fld['label']}{raw}: {fld['meaning']}")
            )
        out += ["```", ""]
        for code, text in map(problem_parts, fr["problems"]):
            out.append(f"- **{t(lang, 'problem')}** `{code}`: {inline(text)}")
        if fr["masked_bytes"]:
            out.append(f"- {t(lang, 'masked_note', n=fr['masked_bytes'])}")
        if fr["problems"] or fr["masked_bytes"]:
            out.append("")

    out += [f"## {t(lang, 'about')}", "", *about_lines(doc), ""]
    return "\n".join(out)
