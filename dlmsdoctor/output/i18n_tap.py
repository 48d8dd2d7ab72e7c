"""Spanish (and English) wording of the tap: its cause and finding codes, its report lines.

Merged into ``i18n.CAUSE_ES`` and ``i18n.FINDING_ES`` by two lines in ``i18n.py``; ``TAP_S`` holds
the tap report's own sentences in both languages (``output.report_tap`` uses them); ``KIND_S_TAP``
the report's words where a probe's would mislead (``i18n.KIND_S["tap"]``; ``KIND_S_CAPTURE`` for
a capture of another client, read by the tap's rules) and ``ROLES`` who TX
and RX are for each kind of session (dlmsdoctor, the user's poller, a capture's client).
Written as a Latin American utility technician says it; the recorded evidence keeps the specifics.
"""

from __future__ import annotations

# (title, explanation, [(when, action)]) as i18n.CAUSE_ES
CAUSE_ES_TAP: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "tap.target.unreachable": (
        "No se puede llegar al medidor",
        "La conexión con el lado del medidor fue rechazada o quedó sin respuesta: el medidor o "
        "el puente está apagado, la dirección o el puerto no son los correctos, o un firewall "
        "la impide.",
        [("now", "Verifique la dirección y el puerto del destino, y que el medidor o el puente "
                 "esté encendido.")],
    ),
    "tap.poller.login_retries": (
        "Su sistema de lectura reintenta un login rechazado: el medidor se va a bloquear",
        "El medidor rechazó varias veces la autenticación y el sistema de lectura sigue "
        "reintentando; muchos medidores se bloquean tras 3 fallas y entonces rechazan incluso "
        "la contraseña correcta.",
        [("now", "Detenga ya los reintentos automáticos del sistema de lectura para este "
                 "medidor."),
         ("now", "Corrija la contraseña o el SAP de cliente en la configuración del sistema de "
                 "lectura y pruebe una sola vez a mano (dlmsdoctor probe --cred ...).")],
    ),
    "tap.poller.malformed": (
        "Su sistema de lectura envía tramas mal formadas que el medidor descarta",
        "Una trama del sistema de lectura tiene un campo equivocado (longitud, longitud del "
        "grupo de parámetros, suma de control); un medidor estricto la descarta sin responder.",
        [("now", "Corrija la trama en el sistema de lectura (el hallazgo indica el campo y su "
                 "valor correcto); dlmsdoctor decode muestra la trama corregida.")],
    ),
    "tap.poller.address_size3": (
        "Su sistema de lectura envía una dirección HDLC de servidor de 3 bytes (solo existen "
        "1, 2 o 4)",
        "IEC 62056-46 admite direcciones de servidor de 1, 2 o 4 bytes; el medidor no reconoce "
        "una de 3.",
        [("now", "Configure una dirección de servidor de 2 o 4 bytes en el sistema de "
                 "lectura.")],
    ),
    "tap.poller.address": (
        "La dirección HDLC de su sistema de lectura está mal formada",
        "El campo de dirección no termina donde debe.",
        [("now", "Configure bien los tamaños de dirección de cliente y servidor.")],
    ),
    "tap.poller.address_unreachable": (
        "La dirección de servidor de su sistema de lectura no alcanza la dirección física del "
        "medidor",
        "Con ese tamaño de dirección no se puede expresar la dirección física del medidor, o "
        "apunta a otra; un medidor HDLC ignora en silencio una trama dirigida a otro.",
        [("now", "Configure en el sistema de lectura la dirección LÓGICA/FÍSICA del medidor con "
                 "un tamaño que la contenga (4 bytes para una física mayor que 127).")],
    ),
    "tap.bridge.busy": (
        "Varios clientes compiten por un puente serial-TCP de una sola conexión",
        "El puente respondió 'Port already in use': su única conexión estaba tomada.",
        [("now", "Que un solo cliente use el puente a la vez: detenga el otro sistema o "
                 "servicio, o serialice las lecturas."),
         ("later", "Cierre cada conexión limpiamente (RLRQ, DISC) para que el puente se libere "
                   "enseguida.")],
    ),
    "tap.poller.timeout_too_short": (
        "Su sistema de lectura se rinde antes de que el medidor responda",
        "El tiempo de espera del sistema de lectura es menor que el tiempo de respuesta del "
        "medidor: la respuesta tardía se pierde o llega a la sesión siguiente como bytes "
        "viejos.",
        [("now", "Aumente el tiempo de espera de respuesta del sistema de lectura por encima de "
                 "las respuestas más lentas del medidor (ver los tiempos de respuesta)."),
         ("later", "Tras un vencimiento, espere y vacíe el canal antes de la sesión siguiente.")],
    ),
    "tap.poller.login_failed": (
        "El medidor rechaza la autenticación de su sistema de lectura",
        "El AARE vino rechazado (por ejemplo authentication-failure: contraseña o SAP de "
        "cliente equivocados).",
        [("now", "Verifique la contraseña y el SAP de cliente del sistema de lectura para este "
                 "medidor.")],
    ),
    "tap.poller.no_answer": (
        "Las solicitudes de su sistema de lectura no tienen respuesta (dirección, SAP de "
        "cliente o trama equivocados)",
        "Un medidor HDLC ignora en silencio una trama dirigida a otra dirección o con errores.",
        [("now", "Compare la dirección de servidor y el SAP de cliente del sistema de lectura "
                 "con los del medidor; dlmsdoctor probe encuentra la dirección a la que "
                 "responde.")],
    ),
    "tap.meter.foreign_protocol": (
        "El lado del medidor habla otro protocolo (texto IEC 62056-21 o telnet)",
        "El puerto responde con la lectura IEC 62056-21 (espera el saludo del modo E antes de "
        "HDLC) o el puente negocia telnet en lugar de pasar bytes crudos.",
        [("now", "Para texto IEC 62056-21: use el puerto HDLC del medidor o el saludo del modo "
                 "E (óptico: dlmsdoctor probe --optical); para bytes telnet: ponga el puerto "
                 "del puente en modo raw.")],
    ),
    "tap.meter.damaged": (
        "Las tramas del lado del medidor llegan dañadas (sumas de control, longitudes, "
        "cortadas)",
        "Ruido en la línea, una velocidad o paridad equivocada detrás del puente o del módem, "
        "o respuestas cortadas.",
        [("now", "Revise la línea detrás del puente o del módem: velocidad y paridad, "
                 "cableado, ruido; el sistema de lectura debe descartar esas tramas y volver a "
                 "pedir.")],
    ),
    "tap.meter.closed_on_request": (
        "El lado del medidor cierra la conexión ante la solicitud de su sistema de lectura",
        "Formato de trama equivocado (medidor wrapper que recibe HDLC), medidor bloqueado o "
        "sesión única tomada.",
        [("now", "Verifique el formato de trama (HDLC o wrapper) y si otra sesión o un bloqueo "
                 "retiene el medidor (dlmsdoctor probe los distingue).")],
    ),
    "tap.poller.session_left_open": (
        "Su sistema de lectura cierra TCP sin liberar la sesión",
        "Sin RLRQ ni DISC, detrás de un puente o en un medidor que conserva la sesión, el "
        "siguiente cliente es rechazado hasta el tiempo de inactividad del medidor.",
        [("now", "Haga que el sistema de lectura envíe RLRQ y DISC antes de cerrar la "
                 "conexión.")],
    ),
    "tap.poller.inactivity_cut": (
        "El tiempo de inactividad del medidor corta a su sistema de lectura",
        "El lado del medidor cerró una conexión sin tráfico; el sistema de lectura no leyó el "
        "tiempo de inactividad (0.0.22.0.0.255, atributo 8).",
        [("now", "Lea el tiempo de inactividad y consulte o reconecte dentro de ese plazo.")],
    ),
    "tap.meter.stale_bytes": (
        "Bytes viejos de una sesión anterior llegan a su sistema de lectura",
        "Un puente o módem entrega lo que el medidor escribió cuando no había cliente "
        "conectado.",
        [("now", "Vacíe el canal tras conectar y empiece con DISC; aumente el tiempo de espera "
                 "para no dejar respuestas tardías.")],
    ),
    "tap.poller.sequence": (
        "Los números de secuencia HDLC de su sistema de lectura están mal",
        "N(S)/N(R) no siguen la cuenta: el medidor descarta o rechaza esas tramas.",
        [("now", "Corrija el manejo de N(S)/N(R) (vuelven a 0 tras el UA, +1 por trama I).")],
    ),
    "tap.meter.sequence": (
        "Los números de secuencia no coinciden entre el sistema de lectura y el medidor",
        "Un lado perdió la cuenta (una trama perdida o repetida).",
        [],
    ),
    "tap.invoke_id.mismatch": (
        "Las respuestas traen otro invoke-id que la solicitud",
        "Un cliente que asocia respuestas por invoke-id las descarta o las confunde.",
        [],
    ),
    "tap.meter.refused": (
        "El medidor rechaza algunas solicitudes de su sistema de lectura",
        "DM, FRMR, respuestas de excepción o resultados de acceso distintos de éxito.",
        [],
    ),
    "tap.bridge.message": (
        "El puente escribe su propio texto al sistema de lectura",
        "Mensajes de ser2net u otro puente en lugar de tramas del medidor.",
        [],
    ),
}

FINDING_ES_TAP: dict[str, str] = {
    code: title for code, (title, _explanation, _actions) in CAUSE_ES_TAP.items()
}

# The tap report's own sentences: {key: {"en": ..., "es": ...}}
TAP_S: dict[str, dict[str, str]] = {
    "sum_tap": {
        "en": "dlmsdoctor relayed your poller to {target} from {started} for {duration} s: "
              "{connections} connection(s), {poller} frame(s) poller → meter, {meter} meter "
              "→ poller.",
        "es": "dlmsdoctor retransmitió su sistema de lectura hacia {target} desde {started} "
              "durante {duration} s: {connections} conexión(es), {poller} trama(s) sistema → "
              "medidor, {meter} medidor → sistema.",
    },
    "sum_cause": {
        "en": "Most likely cause ({confidence} % confidence; where the fault lies: {whose}): "
              "{title}.",
        "es": "Causa más probable ({confidence} % de confianza; responsable: {whose}): {title}.",
    },
    "sum_first_action": {"en": "First thing to do: {action}",
                         "es": "Lo primero: {action}"},
    "sum_ok": {
        "en": "The tap saw no fault in the poller's traffic or the meter's answers.",
        "es": "El tap no vio fallas en el tráfico del sistema de lectura ni en las respuestas "
              "del medidor.",
    },
    "sum_ok_capture": {
        "en": "No fault shows in the poller's traffic or the meter's answers in this capture.",
        "es": "En esta captura no se ven fallas en el tráfico del sistema de lectura ni en las "
              "respuestas del medidor.",
    },
    "sum_kept": {
        "en": "{kept} of {total} frames are in this report; the session's frames file has "
              "them all.",
        "es": "Este informe incluye {kept} de {total} tramas; el archivo de tramas de la "
              "sesión las tiene todas.",
    },
    "layer_meter": {"en": "Meter answers", "es": "Respuestas del medidor"},
    "layer_refused": {"en": "Meter refusals", "es": "Rechazos del medidor"},
    "answers_to": {"en": "answers to {service}", "es": "respuestas a {service}"},
    "answer_figures": {
        "en": "p50 {p50}, p90 {p90}, p99 {p99}, max {max}; {count} answer(s), {late} late",
        "es": "p50 {p50}, p90 {p90}, p99 {p99}, máx. {max}; {count} respuesta(s), {late} "
              "tardía(s)",
    },
    "refused_times": {"en": "×{count}", "es": "×{count}"},
    "late": {"en": "late answers", "es": "respuestas tardías"},
    "ok": {"en": "ok", "es": "bien"},
    "closed_tap": {"en": "when the tap stopped", "es": "al detenerse el tap"},
    "close_fin_poller": {"en": "by the poller (FIN)", "es": "por el sistema de lectura (FIN)"},
    "close_rst_poller": {"en": "reset by the poller (RST)",
                         "es": "reseteada por el sistema de lectura (RST)"},
    "close_fin_meter": {"en": "by the meter side (FIN)", "es": "por el lado del medidor (FIN)"},
    "close_rst_meter": {"en": "reset by the meter side (RST)",
                        "es": "reseteada por el lado del medidor (RST)"},
    "close_failed": {
        "en": "meter side unreachable ({reason}): the tap closed the poller's connection "
              "likewise",
        "es": "lado del medidor inalcanzable ({reason}): el tap cerró igual la conexión del "
              "sistema de lectura",
    },
    "pollers": {"en": "Pollers seen: {items}.", "es": "Sistemas de lectura vistos: {items}."},
    "poller_item": {"en": "{host} ({n} connection(s))", "es": "{host} ({n} conexión(es))"},
    "route_tx": {"en": "poller {client} → meter", "es": "sistema {client} → medidor"},
    "route_rx": {"en": "meter → poller {client}", "es": "medidor → sistema {client}"},
    "headline_ok": {
        "en": "The poller and the meter talk without a fault the tap can see ({frames} frames, "
              "{logins} associations).",
        "es": "El sistema de lectura y el medidor se comunican sin fallas que el tap pueda ver "
              "({frames} tramas, {logins} asociaciones).",
    },
    "fig_logins": {
        "en": "{failures} failed login(s) in the last 15 min (client SAP {sap}, {diag})",
        "es": "{failures} autenticación(es) fallida(s) en los últimos 15 min (SAP de cliente "
              "{sap}, {diag})",
    },
    "fig_pace": {"en": ", one every {pace}", "es": ", una cada {pace}"},
    "fig_lock_in": {
        "en": "; at this pace a meter that locks after {limit} failures locks in about {time}.",
        "es": "; a este ritmo, un medidor que se bloquea tras {limit} fallas se bloquea en unos "
              "{time}.",
    },
    "fig_lock_left": {
        "en": "; {left} more failure(s) lock a meter that locks after {limit}.",
        "es": "; {left} falla(s) más bloquean un medidor que se bloquea tras {limit}.",
    },
    "fig_locked": {
        "en": "; a meter that locks after {limit} failures is locked now: even the right "
              "password fails until the lockout ends.",
        "es": "; un medidor que se bloquea tras {limit} fallas ya está bloqueado: hasta la "
              "contraseña correcta falla mientras dure el bloqueo.",
    },
    "fig_timeout": {
        "en": "The meter answered {service} after {answer}, but your poller gave up after "
              "{waited}.",
        "es": "El medidor respondió {service} a los {answer}, pero su sistema de lectura se "
              "rindió a los {waited}.",
    },
    "headline_ok_capture": {
        "en": "The poller and the meter talk without a fault in this capture ({frames} frames, "
              "{logins} associations).",
        "es": "El sistema de lectura y el medidor se comunican sin fallas en esta captura "
              "({frames} tramas, {logins} asociaciones).",
    },
    "headline_idle_capture": {
        "en": "The capture holds no traffic of the poller to the meter.",
        "es": "La captura no contiene tráfico del sistema de lectura hacia el medidor.",
    },
    "close_failed_capture": {
        "en": "meter side unreachable ({reason})",
        "es": "lado del medidor inalcanzable ({reason})",
    },
    "close_end_capture": {"en": "still open when the capture ended",
                          "es": "seguía abierta al terminar la captura"},
    "headline_idle": {
        "en": "No poller traffic went through the tap: point the poller at the tap's listening "
              "address.",
        "es": "Ningún tráfico del sistema de lectura pasó por el tap: apunte el sistema de "
              "lectura a la dirección de escucha del tap.",
    },
}

# The settings of a tap run, as the report lists them (in this order).
TAP_SETTING: dict[str, dict[str, str]] = {
    "listen": {"en": "listening on (point the poller here)",
               "es": "escucha en (el sistema de lectura apunta aquí)"},
    "target": {"en": "meter side (target)", "es": "lado del medidor (destino)"},
    "meter_address": {"en": "meter's address (LOGICAL/PHYSICAL)",
                      "es": "dirección del medidor (LÓGICA/FÍSICA)"},
    "connect_timeout": {"en": "connect timeout to the meter side",
                        "es": "espera de conexión al lado del medidor"},
    "duration": {"en": "duration asked", "es": "duración pedida"},
    "keep_frames": {"en": "frames kept in memory (the first)",
                    "es": "tramas guardadas en memoria (las primeras)"},
    "frames_file": {"en": "every frame in", "es": "todas las tramas en"},
    "stopped_reason": {"en": "tap stopped by", "es": "tap detenido por"},
    "source": {"en": "read from the capture", "es": "leído de la captura"},
}
TAP_STOPPED: dict[str, dict[str, str]] = {
    "duration": {"en": "its --duration", "es": "su --duration"},
    "interrupted": {"en": "Ctrl-C", "es": "Ctrl-C"},
    "cancelled": {"en": "the user", "es": "el usuario"},
    "stopped": {"en": "the user", "es": "el usuario"},
}

# Who TX and RX are in a report, by session kind (the report document's "roles").
ROLES: dict[str, dict[str, dict[str, str]]] = {
    "probe": {"tx": {"en": "dlmsdoctor", "es": "dlmsdoctor"},
              "rx": {"en": "the meter or bridge", "es": "el medidor o el puente"}},
    "tap": {"tx": {"en": "your poller", "es": "su sistema de lectura"},
            "rx": {"en": "the meter (or bridge)", "es": "el medidor (o el puente)"}},
    "capture": {"tx": {"en": "the client", "es": "el cliente"},
                "rx": {"en": "the meter or bridge", "es": "el medidor o el puente"}},
}


def roles(kind: str, lang: str) -> dict[str, str]:
    """{"tx": who sent the TX frames, "rx": who sent the RX frames} in ``lang``."""
    table = ROLES.get(kind, ROLES["probe"])
    return {side: words.get(lang) or words["en"] for side, words in table.items()}


# A tap report's words where a probe's would mislead (``i18n.KIND_S["tap"]``, said by
# ``i18n.tk``); keys not here are the probe's.
KIND_S_TAP: dict[str, dict[str, str]] = {
    "rungs": {
        "en": "The meter's side: answer times and refusals, service by service",
        "es": "El lado del medidor: tiempos de respuesta y rechazos, servicio por servicio",
    },
    "no_steps": {
        "en": "The meter answered nothing the tap could time.",
        "es": "El medidor no respondió nada que el tap pudiera medir.",
    },
    "findings": {"en": "Findings while relaying", "es": "Hallazgos durante la retransmisión"},
    "no_profile": {
        "en": "A tap tries no settings of its own: the parameters your poller and the meter "
              "negotiated are under Measurements above.",
        "es": "Un tap no prueba parámetros propios: los que negociaron su sistema de lectura y "
              "el medidor están arriba, en Mediciones.",
    },
    "appendix_intro": {
        "en": "Times are seconds since the tap started. TX = sent by your poller to the meter, "
              "RX = sent by the meter (or bridge) to your poller; dlmsdoctor only relayed them. "
              "Offsets are bytes from the start of the frame.",
        "es": "Los tiempos son segundos desde el inicio del tap. TX = enviado por su sistema de "
              "lectura al medidor, RX = enviado por el medidor (o el puente) a su sistema de "
              "lectura; dlmsdoctor solo los retransmitió. Los desplazamientos son bytes desde el "
              "inicio de la trama. Las decodificaciones usan los términos del estándar (en "
              "inglés), igual que Wireshark.",
    },
}


# A capture of another client (``Session.kind`` "capture", read by the tap's rules): the
# report's words where the probe's would mislead (``i18n.KIND_S["capture"]`` has the rest).
KIND_S_CAPTURE: dict[str, dict[str, str]] = {
    "rungs": KIND_S_TAP["rungs"],
    "tool_line": {
        "en": "Written by dlmsdoctor {report_version} from {session}, a capture of another "
              "client's traffic (dlmsdoctor did not write it).",
        "es": "Generado por dlmsdoctor {report_version} a partir de {session}, una captura del "
              "tráfico de otro cliente (no la escribió dlmsdoctor).",
    },
    "no_steps": {
        "en": "The meter answered nothing in this capture that could be timed.",
        "es": "En esta captura el medidor no respondió nada que se pudiera medir.",
    },
}
