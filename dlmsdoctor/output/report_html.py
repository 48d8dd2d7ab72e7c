"""The HTML report: one self-contained file (inline CSS, no scripts, no external resources).

Every recorded or decoded string goes through ``html.escape``: frame decodes and text from bridges
are untrusted input. A print stylesheet keeps sections together and prints on A4/Letter in black
and white without losing the status colours' meaning (the status words are always written).
"""

from __future__ import annotations

from html import escape
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

CSS = """
:root { --ok: #1b7f3b; --warn: #a86400; --bad: #b3261e; --ink: #1d1d1f; --muted: #5f6368;
        --line: #d9dce1; --soft: #f5f6f8; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); margin: 0 auto; max-width: 60rem; padding: 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .75rem; }
h2 { font-size: 1.2rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem;
     margin-top: 2rem; }
h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
.status { border-left: 8px solid var(--muted); background: var(--soft); padding: .75rem 1rem;
          font-size: 1.05rem; }
.status.ok { border-color: var(--ok); } .status.degraded { border-color: var(--warn); }
.status.failed { border-color: var(--bad); } .status.cancelled { border-color: var(--warn); }
.status b { letter-spacing: .02em; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left;
         vertical-align: top; }
th { background: var(--soft); }
td.st-ok { color: var(--ok); font-weight: 600; } td.st-warning { color: var(--warn);
  font-weight: 600; } td.st-failed, td.st-error { color: var(--bad); font-weight: 600; }
td.st-recovered { color: var(--warn); }
code, pre, .hex { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas,
  "Liberation Mono", monospace; font-size: .85rem; }
pre { background: var(--soft); border: 1px solid var(--line); padding: .5rem .7rem;
      white-space: pre-wrap; word-break: break-all; margin: .3rem 0; }
.cause { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem .6rem;
         margin: .8rem 0; }
.meta { color: var(--muted); font-size: .9rem; }
.conf { display: inline-block; min-width: 3.2rem; font-weight: 700; }
.evidence li { margin-bottom: .35rem; }
.frame { border-top: 1px solid var(--line); padding-top: .4rem; margin-top: .8rem; }
.frame h3 { font-size: .95rem; margin: .2rem 0; }
.problem { color: var(--bad); }
.fields td:first-child { white-space: nowrap; color: var(--muted); }
.fields td { border: none; border-bottom: 1px dotted var(--line); padding: .1rem .4rem; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .85rem;
         border-top: 1px solid var(--line); padding-top: .5rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  @page { margin: 15mm 12mm; }
  h2 { break-after: avoid; } h3 { break-after: avoid; }
  .cause, .status, tr { break-inside: avoid; }
  .frame h3, .frame p, .frame pre { break-after: avoid; }
  table.fields { font-size: 8.5pt; }
  .appendix { break-before: page; }
  a { color: inherit; text-decoration: none; }
  pre, .status, th { background: none; }
}
"""


def _kind(doc: dict[str, Any]) -> str:
    return str(doc.get("session", {}).get("kind") or "probe")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(
    head: list[str],
    rows: list[list[str]],
    raw: bool = False,
    classes: list[list[str]] | None = None,
) -> str:
    """A table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            cls = classes[r][c] if classes and classes[r][c] else ""
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{value if raw else _e(value)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _frame_link(index: int, lang: str) -> str:
    return f'<a href="#frame-{index}">{_e(t(lang, "frame"))} #{index}</a>'


def _evidence(ev: dict[str, Any], lang: str) -> str:
    note = _e(ev["note"])
    if not ev.get("note_translated", True) and note:
        note = f"<i>{_e(t(lang, 'recorded_note'))}: {note}</i>"
    if "frame_ref" in ev:
        ref = ev["frame_ref"]
        where = (
            f"{_frame_link(ref['index'], lang)} {_e(ref['dir'].upper())} "
            f"t+{_e(i18n.number(ref['at'], lang, 3))} s: {_e(ref['summary'])}"
        )
        head = evidence_order(note, where, lang)
        problem = "".join(
            f'<br><span class="problem">{_e(t(lang, "problem"))}: {_e(p)}</span>'
            for p in ref["problems"][:1]
        )
        return f"<li>{head}<br><code>{_e(ref['short_hex'])}</code>{problem}</li>"
    if ev.get("step_title"):
        return f"<li>{note} — {_e(t(lang, 'step'))}: {_e(ev['step_title'])}</li>"
    return f"<li>{note}</li>"


def _rungs(doc: dict[str, Any], lang: str) -> str:
    if not doc["rungs"]:
        return f"<p>{_e(i18n.tk(lang, 'no_steps', _kind(doc)))}</p>"
    rows = [rung_cells(r) for r in doc["rungs"]]
    classes = [["", "", f"st-{r['status']}", "", ""] for r in doc["rungs"]]
    return _table(column_heads(RUNG_COLUMNS, lang), rows, classes=classes)


def _measurements(doc: dict[str, Any], lang: str) -> str:
    m = doc["measurements"]
    items = []
    if m["ping"]:
        items.append(f"<li><b>{_e(t(lang, 'ping'))}</b>: {_e(m['ping']['text'])}</li>")
    for item in m["negotiated"]:
        items.append(f"<li><b>{_e(t(lang, 'negotiated'))}</b>: {_e(item['text'])}</li>")
    for item in m["association"]:
        items.append(f"<li><b>{_e(t(lang, 'association'))}</b>: {_e(item['text'])}</li>")
    out = f"<h3>{_e(t(lang, 'figures'))}</h3><ul>{''.join(items)}</ul>" if items else ""
    if m["connections"]:
        out += _table(
            column_heads(CONNECTION_COLUMNS, lang),
            [connection_cells(c, lang) for c in m["connections"]],
        )
    return out


def _cause_html(c: dict[str, Any], heading: str, lang: str) -> str:
    recorded = "" if c["translated"] else f" <i>{_e(t(lang, 'recorded_text'))}</i>"
    expl = f"<p>{_e(c['explanation'])}{recorded}</p>" if c["explanation"] else ""
    evidence = "".join(_evidence(ev, lang) for ev in c["evidence"])
    ev_html = (
        (f'<p><b>{_e(t(lang, "evidence"))}:</b></p><ul class="evidence">{evidence}</ul>')
        if evidence
        else ""
    )
    return (
        f'<div class="cause">{heading}'
        f'<p class="meta"><span class="conf">{c["confidence_pct"]} %</span> '
        f"{_e(t(lang, 'confidence'))} · {_e(t(lang, 'whose'))}: "
        f"<b>{_e(c['whose_label'])}</b> · <code>{_e(c['code'])}</code></p>"
        f"{expl}{ev_html}</div>"
    )


def _causes(doc: dict[str, Any], lang: str) -> str:
    causes = doc["diagnosis"]["causes"]
    if not causes:
        return f"<p>{_e(t(lang, 'sum_no_diag'))}</p>"
    out = [_cause_html(c, f"<h3>{c['rank']}. {_e(c['title'])}</h3>", lang)
           for c in causes if not c["note"]]
    notes = [c for c in causes if c["note"]]
    if notes:
        out.append(f"<h3>{_e(t(lang, 'notes'))}</h3>")
        out += [_cause_html(c, f"<h4>{_e(c['title'])}</h4>", lang) for c in notes]
    return "".join(out)


def _actions(doc: dict[str, Any], lang: str) -> str:
    out = []
    for when, key in (("now", "actions_now"), ("later", "actions_later")):
        items = doc["actions"][when]
        if items:
            lis = "".join(f"<li>{_e(a['text'])}</li>" for a in items)
            out.append(f"<h3>{_e(t(lang, key))}</h3><ol>{lis}</ol>")
    return "".join(out) or f"<p>{_e(t(lang, 'none'))}</p>"


def _profile(doc: dict[str, Any], lang: str) -> str:
    if not doc["profile"]:
        return f"<p>{_e(i18n.tk(lang, 'no_profile', _kind(doc)))}</p>"
    return f"<p>{_e(i18n.tk(lang, 'profile_intro', _kind(doc)))}</p>" + _table(
        [t(lang, "setting"), t(lang, "value")], [list(r) for r in doc["profile"]["rows"]]
    )


def _settings(doc: dict[str, Any], lang: str) -> str:
    key = "secrets_shown" if doc["secrets_shown"] else "secrets_masked"
    names = ", ".join(f"<code>{_e(n)}</code>" for n in doc["credential_sets"])
    items = [f"<li><b>{_e(t(lang, 'credential_sets'))}</b>: {names or _e(t(lang, 'none'))}</li>"]
    items += [f"<li>{_e(k)}: {_e(v)}</li>" for k, v in doc["settings_text"]]
    out = f"<p><i>{_e(t(lang, key))}</i></p><ul>{''.join(items)}</ul>"
    if doc["logins"]:
        lis = "".join(f"<li>{_e(x['text'])}</li>" for x in doc["logins"])
        out += f"<h3>{_e(t(lang, 'logins'))}</h3><ul>{lis}</ul>"
    if doc["identity"]:
        lis = "".join(
            f"<li>{_e(k)}: {_e(v)}</li>" for k, v in doc["identity_text"]
        )
        out += f"<h3>{_e(t(lang, 'identity'))}</h3><ul>{lis}</ul>"
    if doc["findings"]:
        found: list[str] = []
        for f in doc["findings"]:
            frames = ", ".join(_frame_link(i, lang) for i in f["frames"])
            recorded = "" if f["translated"] else f" <i>{_e(t(lang, 'recorded_text'))}</i>"
            found.append(
                f"<li>t+{_e(i18n.number(f['at'], lang, 3))} s "
                f"<code>{_e(f['code'])}</code> ({_e(f['severity_label'])}): "
                f"{_e(f['text'])}{recorded}" + (f" [{frames}]" if frames else "") + "</li>"
            )
        out += f"<h3>{_e(i18n.tk(lang, 'findings', _kind(doc)))}</h3><ul>{''.join(found)}</ul>"
    return out


def _frames(doc: dict[str, Any], lang: str) -> str:
    if not doc["frames"]:
        return f"<p>{_e(t(lang, 'no_frames'))}</p>"
    out = []
    for fr in doc["frames"]:
        rows = "".join(
            f"<tr><td>{fld['offset']}+{fld['length']}</td>"
            f'<td style="padding-left:{0.4 + fld["depth"] * 1.2:.1f}rem">{_e(fld["label"])}'
            + (f" <code>{_e(fld['hex'])}</code>" if fld["hex"] else "")
            + f"</td><td>{_e(fld['meaning'])}</td></tr>"
            for fld in fr["fields"]
        )
        problems = "".join(
            f'<li class="problem"><code>{_e(code)}</code>: {_e(text)}</li>'
            for code, text in map(problem_parts, fr["problems"])
        )
        if fr["masked_bytes"]:
            problems += f"<li>{_e(t(lang, 'masked_note', n=fr['masked_bytes']))}</li>"
        out.append(
            f'<div class="frame" id="frame-{fr["index"]}"><h3>{_e(frame_heading(fr, lang))}</h3>'
            f"<p>{_e(fr['summary'])}</p>"
            f'<pre class="hex">{_e(fr["hex"])}</pre>'
            + (f'<table class="fields">{rows}</table>' if rows else "")
            + (f"<ul>{problems}</ul>" if problems else "")
            + "</div>"
        )
    return "".join(out)


def render_html(doc: dict[str, Any]) -> str:
    lang = doc["lang"]
    target, status = doc["target"], doc["status"]
    title = f"{t(lang, 'title')}: {target_where(target, lang)}"
    summary = "".join(f"<li>{_e(x)}</li>" for x in doc["summary"])
    footer = " ".join(_e(x) for x in about_lines(doc))
    status_code = status["code"] if status["code"] in ("ok", "degraded", "failed",
                                                       "cancelled") else ""
    parts = [
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<div class="status {status_code}"><b>{_e(t(lang, "status"))}: '
        f"{_e(status['label'])}</b> — {_e(status['headline'])}</div>",
        f"<h2>{_e(t(lang, 'summary'))}</h2><ul>{summary}</ul>",
        f"<h2>{_e(i18n.tk(lang, 'rungs', _kind(doc)))}</h2>{_rungs(doc, lang)}"
        f"{_measurements(doc, lang)}",
        f"<h2>{_e(t(lang, 'diagnosis'))}</h2>{_causes(doc, lang)}",
        f"<h2>{_e(t(lang, 'actions'))}</h2>{_actions(doc, lang)}",
        f"<h2>{_e(t(lang, 'profile'))}</h2>{_profile(doc, lang)}",
        f"<h2>{_e(t(lang, 'settings'))}</h2>{_settings(doc, lang)}",
        f'<section class="appendix"><h2>{_e(t(lang, "appendix"))}</h2>'
        f"<p>{_e(i18n.tk(lang, 'appendix_intro', _kind(doc)))}</p>{_frames(doc, lang)}</section>",
        f"<footer><h2>{_e(t(lang, 'about'))}</h2><p>{footer}</p></footer>",
        "</body></html>\n",
    ]
    return "\n".join(parts)
