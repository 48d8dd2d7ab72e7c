"""Evidence notes and codec findings in the report's language.

The diagnosis records its evidence notes in English, with this run's figures in them
("SNRM to 1/1 (2-byte): no answer"). A Spanish report says each of them in Spanish: the notes
the rules write are matched here by pattern, their figures kept; a probe finding's note is said
by its code (``FINDING_ES``); a codec finding by its code and the frame's direction. What has no
Spanish yet returns None (the report marks it, and ``diagnosis.consistency`` flags it).
"""

from __future__ import annotations

import re

from dlmsdoctor.diagnosis.words import CODEC_EN
from dlmsdoctor.output import i18n

_WHO = re.compile(r"credential set '(?P<name>[^']*)' \(client SAP (?P<sap>\d+), (?P<mech>\w+)\)")


# A capture's login (no credential set name known): "the login of client SAP 1 (low)".
_LOGIN_OF = re.compile(r"the login of client SAP (?P<sap>\d+)(?: \((?P<mech>\w+)\))?")


def _who_es(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        mech = i18n.pick(i18n.AUTH, m["mech"], "es", m["mech"])
        return f"el juego '{m['name']}' (SAP de cliente {m['sap']}, {mech})"

    text = _WHO.sub(one, text)
    return _LOGIN_OF.sub(lambda m: f"la autenticación del SAP de cliente {m['sap']}"
                         + (f" ({i18n.pick(i18n.AUTH, m['mech'], 'es', m['mech'])})"
                            if m["mech"] else ""), text)


def _figures_es(text: str) -> str:
    """Decimal points of figures as commas ("0.7 ms" -> "0,7 ms")."""
    return re.sub(r"(\d)\.(\d)", r"\1,\2", text)


def _size_es(text: str) -> str:
    return re.sub(r"\((\d+)-byte( address)?\)", r"(\1 bytes)", text)


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), es)
    for p, es in (
        (r"SNRM to (?P<a>.+): no answer", "SNRM a {a}: sin respuesta"),
        (r"SNRM to (?P<a>.+): connection closed", "SNRM a {a}: conexión cerrada"),
        (r"UA from (?P<a>.+)", "UA de {a}"),
        (r"SNRM: no answer within the timeout", "SNRM: sin respuesta dentro de la espera"),
        (r"the UA arrived (?P<d>.+) after the SNRM", "el UA llegó {d} después del SNRM"),
        (r"AARQ: no answer", "AARQ: sin respuesta"),
        (r"AARQ: no answer within the wait", "AARQ: sin respuesta dentro de la espera"),
        (r"the AARE arrived (?P<d>.+) after the AARQ", "el AARE llegó {d} después del AARQ"),
        (r"wrapper PDU: no answer", "PDU wrapper: sin respuesta"),
        (r"DM: link refused", "DM: enlace rechazado"),
        (r"UA later", "UA más tarde"),
        (r"FRMR: frame rejected", "FRMR: trama rechazada"),
        (r"rejected frame \((?P<n>\d+) info bytes\)",
         "trama rechazada ({n} bytes de información)"),
        (r"UA: negotiated limits", "UA: límites negociados"),
        (r"connection (?P<n>\d+) closed by the peer (?P<d>.+) after this frame, no byte back",
         "el otro extremo cerró la conexión {n} {d} después de esta trama, sin devolver nada"),
        (r"connection (?P<n>\d+) closed right after this frame, no byte back",
         "la conexión {n} se cerró justo después de esta trama, sin devolver nada"),
        (r"connection (?P<n>\d+) dropped after this frame, after a failed login",
         "la conexión {n} se cortó después de esta trama, tras una autenticación fallida"),
        (r"connection (?P<n>\d+) closed by the bridge", "el puente cerró la conexión {n}"),
        (r"connection (?P<n>\d+) closed after (?P<d>.+) idle",
         "la conexión {n} se cerró tras {d} sin tráfico"),
        (r"the bridge wrote (?P<t>.+) and closed", "el puente escribió {t} y cerró"),
        (r"a connection a moment later got through", "una conexión un momento después pasó"),
        (r"bridge: (?P<t>.+)", "puente: {t}"),
        (r"bridge busy", "puente ocupado"),
        (r"telnet negotiation bytes \(IAC \.\.\.\)", "bytes de negociación telnet (IAC ...)"),
        (r"IEC 62056-21 text (?P<t>.+)", "texto IEC 62056-21 {t}"),
        (r"our own bytes came back", "volvieron nuestros propios bytes"),
        (r"(?P<n>\d+) bytes before we sent anything", "{n} bytes antes de enviar nada"),
        (r"(?P<t>\S+) where UA/DM was expected", "{t} donde se esperaba UA o DM"),
        (r"frame ends early, then close", "la trama termina antes de tiempo y se cierra la "
         "conexión"),
        (r"request", "pedido"),
        (r"answered after (?P<d>.+)", "respondido después de {d}"),
        (r"request \(frame #(?P<n>\d+)\), answered late", "pedido (trama #{n}), respondido "
         "tarde"),
        (r"(?P<n>\d+) echo requests, no reply", "{n} pedidos de eco, sin respuesta"),
        (r"TCP connected all the same", "el TCP conectó igual"),
        (r"the host answers ping", "el equipo responde al ping"),
        (r"connection refused", "conexión rechazada"),
        (r"connection timeout", "conexión sin respuesta"),
        (r"connection unreachable", "equipo inalcanzable"),
        (r"connection dns", "el nombre no se resuelve"),
        (r"connect (?P<d>.+)", "conexión en {d}"),
        (r"rtt (?P<d>.+)", "ida y vuelta {d}"),
        (r"internal error", "error interno"),
        (r"release failed", "la liberación falló"),
        (r"the meter's AARE refused (?P<w>.+): (?P<r>[^:]+)",
         "el AARE del medidor rechazó a {w}: {r}"),
        (r"(?P<w>(?:credential set|the login of) .+) accepted earlier, refused now",
         "{w}: aceptado antes, rechazado ahora"),
        (r"the run stopped: the connection was closed at once(?P<rest>.*)",
         "la prueba se detuvo: la conexión se cerró de inmediato{rest}"),
        (r"the connection was closed at once; password logins were held back(?P<rest>.*)",
         "la conexión se cerró de inmediato; no se probaron contraseñas{rest}"),
        (r"bytes that are not a DLMS frame", "bytes que no son una trama DLMS"),
        (r"IEC 62056-21 text instead of DLMS: (?P<t>.+)",
         "texto IEC 62056-21 en lugar de DLMS: {t}"),
        (r"telnet negotiation instead of DLMS", "negociación telnet en lugar de DLMS"),
        (r"the bridge answered (?P<t>.+) instead of the meter",
         "el puente respondió {t} en lugar del medidor"),
        (r"(?P<n>\d+) unrecognised byte\(s\)", "{n} byte(s) no reconocidos"),
    )
]
_REST = re.compile(r", with (?P<n>\d+) failed login\(s\) recent in the login ledger")
_OWN = re.compile(r"; dlmsdoctor's own failed logins on this meter: (?P<t>.+)$")


def _codec_es(note: str) -> str | None:
    """A note made of codec sentences ("; "-joined), in Spanish."""
    parts = note.split("; ")
    out = []
    for part in parts:
        found = None
        for code, texts in CODEC_EN.items():
            for direction, text in texts.items():
                if part == text:
                    pair = i18n.CODEC_ES.get(code)
                    found = None if pair is None else pair[0 if direction == "tx" else 1]
        if found is None:
            return None
        out.append(found)
    return "; ".join(out)


def note_es(note: str) -> str | None:
    """A rule's evidence note in Spanish, or None when there is no Spanish for it."""
    figured = figured_es(note)
    if figured is not None:
        return figured
    for pattern, template in _PATTERNS:
        m = pattern.fullmatch(note)
        if m is None:
            continue
        values = {}
        for key, value in m.groupdict().items():
            value = value or ""
            if key == "rest":
                value = _REST.sub(lambda r: f", con {r['n']} autenticación(es) fallida(s) "
                                  "recientes en el registro de intentos", value)
                value = _OWN.sub(lambda r: "; autenticaciones fallidas de dlmsdoctor en este "
                                 "medidor: " + r["t"].replace("(an earlier run)",
                                                             "(una prueba anterior)")
                                 .replace("(this run)", "(esta prueba)"), value)
            values[key] = _figures_es(_size_es(_who_es(value)))
        return (template.format(**values).replace(" a el juego", " al juego")
                .replace(" a la autenticación", " la autenticación"))
    return _codec_es(note)


_VALUE_WORDS_ES = (("(no answer)", "(sin respuesta)"), ("no answer", "sin respuesta"),
                   ("nothing open", "nada abierto"), ("closed by peer", "cerrada por el otro "
                   "extremo"), ("silence", "silencio"), ("late", "tarde"))


def value_es(text: str) -> str:
    """A step figure's recorded words ("DISC (no answer)") in Spanish."""
    for en, es in _VALUE_WORDS_ES:
        text = text.replace(en, es)
    return text


def summary_es(summary: str) -> str:
    """A frame's decode summary in Spanish where it is plain words (text, unknown bytes); the
    protocol decodes keep the standard's terms."""
    return note_es(summary) or summary


def evidence_note(note: str, finding: str | None, lang: str) -> tuple[str, bool]:
    """(the note in ``lang``, whether it is in ``lang``)."""
    if lang == "en" or not note:
        return note, True
    spanish = note_es(note)
    if spanish is not None:
        return spanish, True
    if finding and finding in i18n.FINDING_ES:
        return i18n.FINDING_ES[finding], True
    return note, False


def codec_problem(code: str, message: str, tx: bool, lang: str) -> tuple[str, bool]:
    """A codec (or recorded) finding on a frame, in words for its direction, in ``lang``."""
    direction = "tx" if tx else "rx"
    if lang == "es":
        if code in i18n.CODEC_ES:
            return i18n.CODEC_ES[code][0 if tx else 1], True
        if code in i18n.FINDING_ES:
            return i18n.FINDING_ES[code], True
        family = i18n.CODEC_FAMILY_ES.get(code.split(".")[0])
        if family is not None:
            return family, True
        return message, False
    if code in CODEC_EN:
        return CODEC_EN[code][direction], True
    return message, True


# The late/slow answer's words carry this run's figures (the delay, the wait, the timeout a
# poller needs): a Spanish report keeps them, said in Spanish.
_REQUEST_ES = {"SNRM": "SNRM", "DISC": "DISC", "ACTION": "ACTION", "request": "pedido",
               "AARQ (association)": "AARQ (asociación)", "GET (read)": "GET (lectura)",
               "RLRQ (release)": "RLRQ (liberación)"}
_ANSWER_ES = {"UA": "el UA", "AARE": "el AARE", "RLRE": "el RLRE", "answer": "la respuesta",
              "GET answer": "la respuesta al GET", "ACTION answer": "la respuesta al ACTION"}
_NEEDED = (r"(?P<n>[\d.]+) s \(dlmsdoctor: --timeout (?P<c>[\d.]+)\); the slowest answer took "
           r"(?P<d>.+)\.")
_FIGURED_ES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), es)
    for p, es in (
        (r"(?P<r>.+): no answer within the (?P<w>.+) wait",
         "{r}: sin respuesta dentro de la espera de {w}"),
        (r"the (?P<a>.+) came (?P<d>.+) after it", "{a} llegó {d} después"),
        (r"The meter works, but slowly: its (?P<a>.+) came (?P<d>.+) after our (?P<r>.+), "
         r"later than the (?P<w>.+) wait",
         "El medidor funciona, pero lento: {a} llegó {d} después de nuestro {r}, más tarde "
         "que la espera de {w}"),
        (r"The meter answers, but later than the timeout \((?P<d>.+) after the request\)",
         "El medidor responde, pero después del tiempo de espera ({d} después del pedido)"),
        (r"Maybe a login lockout caused by dlmsdoctor's own failed logins at (?P<t>.+) "
         r"\(not proven\)",
         "Quizás un bloqueo de autenticación causado por los intentos fallidos de dlmsdoctor "
         "a las {t} (no probado)"),
        (r"The meter answers slowly \(typically (?P<d>.+)\)",
         "El medidor responde lento (típicamente {d})"),
        (r"Set your poller's reply timeout to at least " + _NEEDED,
         "Configure el tiempo de espera de respuesta de su sistema de lectura en al menos {n} s "
         "(dlmsdoctor: --timeout {c}); la respuesta más lenta tardó {d}."),
        (r"Set the client's reply timeout to at least " + _NEEDED,
         "Configure el tiempo de espera de respuesta del cliente en al menos {n} s "
         "(dlmsdoctor: --timeout {c}); la respuesta más lenta tardó {d}."),
    )
]


def figured_es(text: str) -> str | None:
    """A late or slow answer's title, note or action (with its figures) in Spanish, or None."""
    for pattern, template in _FIGURED_ES:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values = {}
        for key, value in m.groupdict().items():
            if key == "r":
                value = _REQUEST_ES.get(value, value)
            elif key == "a":
                value = _ANSWER_ES.get(value, value)
            # "n" is prose (decimal comma); "c" goes on a command line: as typed, with a dot
            values[key] = (value.replace(".", ",") if key == "n" else value if key == "c"
                           else _figures_es(value))
        out = template.format(**values)
        return out[0].upper() + out[1:]
    return None
