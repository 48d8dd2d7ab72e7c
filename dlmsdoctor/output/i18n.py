"""Report wording in English and Spanish (as a Latin American utility technician writes it).

Everything a report says in its own voice comes from here: labels, status words, the sentences of
the executive summary, and, for the cause codes the diagnosis emits, a title, an explanation and
actions in each language. Text recorded by the engine or the diagnosis in a language we do not
have (free text) is shown as recorded; protocol decodes keep the standard's terms.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dlmsdoctor.output.i18n_tap import CAUSE_ES_TAP, FINDING_ES_TAP, KIND_S_CAPTURE, KIND_S_TAP

LANGS = ("en", "es")

_S: dict[str, dict[str, str]] = {
    "title": {"en": "dlmsdoctor diagnostic report", "es": "Informe de diagnóstico dlmsdoctor"},
    "meter": {"en": "Meter", "es": "Medidor"},
    "status": {"en": "Status", "es": "Estado"},
    "summary": {"en": "Executive summary", "es": "Resumen ejecutivo"},
    "rungs": {
        "en": "What works and what does not, layer by layer",
        "es": "Qué funciona y qué no, capa por capa",
    },
    "figures": {"en": "Measurements", "es": "Mediciones"},
    "diagnosis": {
        "en": "Diagnosis: probable causes, ranked",
        "es": "Diagnóstico: causas probables, en orden",
    },
    "actions": {"en": "Recommended actions", "es": "Acciones recomendadas"},
    "actions_now": {"en": "Immediate", "es": "Inmediatas"},
    "actions_later": {"en": "Later", "es": "Después"},
    "profile": {"en": "Working connection profile", "es": "Perfil de conexión que funciona"},
    "no_profile": {
        "en": "No working connection profile was found in this run.",
        "es": "En esta prueba no se encontró un perfil de conexión que funcione.",
    },
    "profile_intro": {
        "en": "These settings were shown to work in this run; copy them into the "
        "reading system's configuration:",
        "es": "Esta configuración funcionó en esta prueba; cópiela en la "
        "configuración del sistema de lectura:",
    },
    "settings": {
        "en": "Settings and credential sets used",
        "es": "Parámetros y juegos de credenciales usados",
    },
    "secrets_masked": {
        "en": "Passwords and keys are masked (********).",
        "es": "Las contraseñas y claves van enmascaradas (********).",
    },
    "secrets_shown": {
        "en": "WARNING: this report shows passwords and keys in clear.",
        "es": "ATENCIÓN: este informe muestra contraseñas y claves en claro.",
    },
    "logins": {"en": "Login attempts", "es": "Intentos de autenticación"},
    "findings": {"en": "Probe findings", "es": "Hallazgos de las pruebas"},
    "identity": {"en": "Meter identity", "es": "Identificación del medidor"},
    "appendix": {
        "en": "Appendix: every frame, annotated",
        "es": "Anexo: todas las tramas, anotadas",
    },
    "appendix_intro": {
        "en": "Times are seconds since the start of the run. TX = sent by dlmsdoctor, RX = "
        "received from the meter or bridge. Offsets are bytes from the start of the frame.",
        "es": "Los tiempos son segundos desde el inicio de la prueba. TX = enviado por "
        "dlmsdoctor, RX = recibido del medidor o del puente. Los desplazamientos son bytes "
        "desde el inicio de la trama. Las decodificaciones usan los términos del estándar "
        "(en inglés), igual que Wireshark.",
    },
    "about": {"en": "About this report", "es": "Sobre este informe"},
    "no_frames": {"en": "No frames were exchanged.", "es": "No se intercambiaron tramas."},
    "none": {"en": "none", "es": "ninguno"},
    "evidence": {"en": "Evidence", "es": "Evidencia"},
    "confidence": {"en": "confidence", "es": "confianza"},
    "whose": {"en": "where the fault lies", "es": "responsable"},
    "frame": {"en": "frame", "es": "trama"},
    "step": {"en": "step", "es": "paso"},
    "layer": {"en": "Layer", "es": "Capa"},
    "check": {"en": "Check", "es": "Prueba"},
    "result": {"en": "Result", "es": "Resultado"},
    "time": {"en": "Time", "es": "Tiempo"},
    "details": {"en": "Details", "es": "Detalle"},
    "connection": {"en": "Connection", "es": "Conexión"},
    "opened": {"en": "Opened at", "es": "Abierta a los"},
    "connect_time": {"en": "Connect time", "es": "Tiempo de conexión"},
    "closed": {"en": "Closed", "es": "Cierre"},
    "traffic": {"en": "Frames TX/RX (bytes)", "es": "Tramas TX/RX (bytes)"},
    "ping": {"en": "Ping (ICMP echo)", "es": "Ping (eco ICMP)"},
    "ping_line": {
        "en": "{sent} sent, {received} answered, loss {loss} %, RTT min/avg/max "
        "{rmin}/{ravg}/{rmax} ms",
        "es": "{sent} enviados, {received} respondidos, pérdida {loss} %, RTT "
        "mín/prom/máx {rmin}/{ravg}/{rmax} ms",
    },
    "ping_none": {
        "en": "{sent} sent, none answered (loss 100 %)",
        "es": "{sent} enviados, ninguno respondido (pérdida 100 %)",
    },
    "negotiated": {
        "en": "Negotiated HDLC parameters (from the meter's UA)",
        "es": "Parámetros HDLC negociados (según el UA del medidor)",
    },
    "negotiated_line": {
        "en": "frame #{frame}: server {server}, max info TX/RX {tx}/{rx} bytes, window TX/RX "
        "{wtx}/{wrx}",
        "es": "trama #{frame}: servidor {server}, info máx. TX/RX {tx}/{rx} bytes, ventana TX/RX "
        "{wtx}/{wrx}",
    },
    "association": {
        "en": "Association (from the meter's AARE)",
        "es": "Asociación (según el AARE del medidor)",
    },
    "association_line": {
        "en": "frame #{frame}: {result}, {context} referencing, DLMS {version}, max PDU {pdu} "
        "bytes",
        "es": "trama #{frame}: {result}, referenciación {context}, DLMS {version}, PDU máx. "
        "{pdu} bytes",
    },
    "close_fin_peer": {"en": "by the meter/bridge (FIN)", "es": "por el medidor/puente (FIN)"},
    "close_rst_peer": {
        "en": "reset by the meter/bridge (RST)",
        "es": "reseteada por el medidor/puente (RST)",
    },
    "close_local": {"en": "by dlmsdoctor", "es": "por dlmsdoctor"},
    "close_timeout": {
        "en": "by dlmsdoctor after a timeout",
        "es": "por dlmsdoctor tras agotar la espera",
    },
    "close_rst_local": {"en": "reset by dlmsdoctor (RST)", "es": "reseteada por dlmsdoctor (RST)"},
    "close_open": {"en": "still open at the end", "es": "seguía abierta al final"},
    "failed_conn": {"en": "failed: {reason}", "es": "falló: {reason}"},
    "setting": {"en": "Setting", "es": "Parámetro"},
    "value": {"en": "Value", "es": "Valor"},
    "profile_host": {"en": "Host and port", "es": "IP y puerto"},
    "profile_framing": {"en": "Framing", "es": "Formato de trama"},
    "profile_server": {
        "en": "Server address (logical/physical)",
        "es": "Dirección de servidor (lógica/física)",
    },
    "profile_size": {"en": "Address size", "es": "Tamaño de dirección"},
    "profile_client": {"en": "Client SAP", "es": "SAP de cliente"},
    "profile_auth": {"en": "Authentication", "es": "Autenticación"},
    "profile_credential": {"en": "Credential set", "es": "Juego de credenciales"},
    "profile_info": {"en": "Max info length TX/RX", "es": "Longitud máx. de info TX/RX"},
    "profile_window": {"en": "Window TX/RX", "es": "Ventana TX/RX"},
    "profile_pdu": {"en": "Max PDU size", "es": "Tamaño máx. de PDU"},
    "bytes": {"en": "bytes", "es": "bytes"},
    "byte_address": {"en": "{n}-byte", "es": "{n} bytes"},
    "credential_sets": {
        "en": "Credential sets (names only)",
        "es": "Juegos de credenciales (solo nombres)",
    },
    "login_row_sap": {  # a capture's login: no credential set name
        "en": "t+{at} s: client SAP {sap}, {mechanism}: {outcome}",
        "es": "t+{at} s: SAP de cliente {sap}, {mechanism}: {outcome}",
    },
    "login_row": {
        "en": "t+{at} s: set '{credential}', client SAP {sap}, {mechanism}: {outcome}",
        "es": "t+{at} s: juego '{credential}', SAP de cliente {sap}, {mechanism}: {outcome}",
    },
    "tool_line": {
        "en": "Written by dlmsdoctor {report_version} from session {session} "
        "(recorded by dlmsdoctor {tool_version}).",
        "es": "Generado por dlmsdoctor {report_version} a partir de la sesión "
        "{session} (registrada por dlmsdoctor {tool_version}).",
    },
    "times_line": {
        "en": "Run started {started}, finished {finished}, lasted {duration} s.",
        "es": "Prueba iniciada {started}, terminada {finished}, duró {duration} s.",
    },
    "cancelled": {
        "en": "The run was cancelled before it finished.",
        "es": "La prueba se canceló antes de terminar.",
    },
    "proof": {
        "en": "Every statement above points to frames in the appendix; the pcapng written "
        "from the same session holds the same bytes for Wireshark.",
        "es": "Cada afirmación de arriba apunta a tramas del anexo; el pcapng generado de "
        "la misma sesión contiene los mismos bytes para abrirlos en Wireshark.",
    },
    "recorded_text": {"en": "", "es": "(texto del diagnóstico, en inglés)"},
    "masked_note": {"en": "{n} secret byte(s) masked", "es": "{n} byte(s) secretos enmascarados"},
    "problem": {"en": "Problem", "es": "Problema"},
    # executive summary
    "sum_run": {
        "en": "dlmsdoctor tested {host}:{port} on {date} for {duration} s: {frames} "
        "frames on {conns} TCP connection(s).",
        "es": "dlmsdoctor probó {host}:{port} el {date} durante {duration} s: {frames} "
        "tramas en {conns} conexión(es) TCP.",
    },
    "sum_works": {"en": "Works: {items}.", "es": "Funciona: {items}."},
    "sum_fails": {"en": "Does not work: {items}.", "es": "No funciona: {items}."},
    "sum_figures": {"en": "Figures: {items}.", "es": "Cifras: {items}."},
    "fig_tcp": {"en": "TCP connect {avg} on average, {worst} at worst ({n} connection(s))",
                "es": "conexión TCP en {avg} de promedio, {worst} la peor ({n} conexión(es))"},
    "fig_link": {"en": "HDLC link with {server}: max info TX/RX {tx}/{rx} bytes, window "
                       "{wtx}/{wrx}",
                 "es": "enlace HDLC con {server}: info máx. TX/RX {tx}/{rx} bytes, ventana "
                       "{wtx}/{wrx}"},
    "fig_assoc": {"en": "last association {result}, max PDU {pdu} bytes",
                  "es": "última asociación {result}, PDU máx. {pdu} bytes"},
    "sum_cause": {
        "en": "Most likely cause ({conf} % confidence; where the fault lies: {whose}): {title}.",
        "es": "Causa más probable ({conf} % de confianza; responsable: {whose}): {title}.",
    },
    "sum_action": {
        "en": "First thing to do: {action}",
        "es": "Lo primero que hay que hacer: {action}",
    },
    "sum_profile": {
        "en": "A working connection was found: {profile}.",
        "es": "Se encontró una conexión que funciona: {profile}.",
    },
    "sum_no_profile": {
        "en": "No working connection was found yet.",
        "es": "Todavía no se encontró una conexión que funcione.",
    },
    "sum_no_diag": {
        "en": "No diagnosis was recorded for this session.",
        "es": "Esta sesión no tiene diagnóstico registrado.",
    },
    "no_steps": {
        "en": "No steps were recorded (a capture read from a file holds frames only).",
        "es": "No hay pasos registrados (una captura leída de archivo solo trae tramas).",
    },
    "headline_profile": {"en": "; it answers with {profile}", "es": "; responde con {profile}"},
    "recorded_note": {"en": "", "es": "nota registrada"},
    "use_profile": {
        "en": "Configure the reading system with the working connection profile below.",
        "es": "Configure el sistema de lectura con el perfil de conexión que funciona (ver abajo).",
    },
}

AARE_RESULT = {
    "accepted": {"en": "accepted", "es": "aceptada"},
    "rejected-permanent": {"en": "rejected (permanent)", "es": "rechazada (permanente)"},
    "rejected-transient": {"en": "rejected (transient)", "es": "rechazada (transitoria)"},
}

SEVERITY = {
    "info": {"en": "info", "es": "info"},
    "warning": {"en": "warning", "es": "advertencia"},
    "error": {"en": "error", "es": "error"},
}

STATUS = {
    "ok": {"en": "OK", "es": "OK"},
    "degraded": {"en": "WORKS, WITH PROBLEMS", "es": "FUNCIONA, CON PROBLEMAS"},
    "failed": {"en": "NOT WORKING", "es": "NO FUNCIONA"},
    "unknown": {"en": "NOT DIAGNOSED", "es": "SIN DIAGNÓSTICO"},
}

STEP_STATUS = {
    "pending": {"en": "not run", "es": "no ejecutado"},
    "running": {"en": "unfinished", "es": "sin terminar"},
    "ok": {"en": "OK", "es": "OK"},
    "failed": {"en": "FAILED", "es": "FALLÓ"},
    "warning": {"en": "OK, with a warning", "es": "OK, con advertencia"},
    "skipped": {"en": "skipped", "es": "omitido"},
    "unavailable": {"en": "not possible here", "es": "no disponible aquí"},
    "error": {"en": "dlmsdoctor error", "es": "error de dlmsdoctor"},
    "cancelled": {"en": "cancelled", "es": "cancelado"},
    "target_busy": {"en": "the meter or bridge was busy", "es": "el medidor o el puente estaba "
                    "ocupado"},
}

WHOSE = {
    "meter": {"en": "meter", "es": "medidor"},
    "bridge": {"en": "bridge", "es": "puente serial-TCP"},
    "network": {"en": "network", "es": "red"},
    "client": {"en": "client configuration", "es": "configuración del cliente"},
    "poller": {"en": "your poller", "es": "su sistema de lectura"},
    "unknown": {"en": "unknown", "es": "desconocido"},
}

LAYER = {
    "icmp": {"en": "Network (ICMP)", "es": "Red (ICMP)"},
    "tcp": {"en": "TCP", "es": "TCP"},
    "framing": {"en": "Framing", "es": "Formato de trama"},
    "hdlc": {"en": "HDLC link", "es": "Enlace HDLC"},
    "wrapper": {"en": "TCP wrapper", "es": "Wrapper TCP"},
    "address": {"en": "HDLC address", "es": "Dirección HDLC"},
    "association": {"en": "Association", "es": "Asociación"},
    "cosem": {"en": "COSEM reads", "es": "Lecturas COSEM"},
    "release": {"en": "Release", "es": "Liberación"},
}

# Step titles by step id; "assoc.login.NAME" and "cosem.read.NAME" carry a credential set name.
# Unknown ids keep their recorded title.
STEP_TITLE_ES = {
    "icmp.ping": "Ping al medidor",
    "tcp.connect": "Conexión TCP",
    "framing.detect": "Detección del formato de trama (HDLC o wrapper)",
    "hdlc.snrm": "Enlace HDLC (SNRM) en la dirección configurada",
    "hdlc.disc": "DISC previo (limpiar un enlace colgado)",
    "address.serial": "Enlace HDLC en la dirección derivada del número de serie",
    "address.discover": "Búsqueda de la dirección de servidor",
    "assoc.public": "Asociación pública (cliente 16, sin autenticación)",
    "assoc.login": "Asociación (AARQ/AARE)",
    "cosem.identity": "Lectura de objetos de identificación",
    "release": "Liberación y desconexión",
}
STEP_TITLE_ES_NAMED = {
    "assoc.login.": "Autenticación con el juego '{name}'",
    "cosem.read.": "Lecturas con el juego '{name}'",
}

# Probe finding codes (docs/probes.md) in Spanish: general wording; the data stays in the JSON.
FINDING_ES = {
    "icmp.no_reply": "El ping no tuvo respuesta (a menudo solo está filtrado; decide el TCP)",
    "icmp.loss": "Se perdieron algunas respuestas de ping",
    "icmp.unavailable": "No se puede enviar ICMP desde este equipo",
    "tcp.refused": "Conexión TCP rechazada (RST): puerto equivocado o servicio detenido",
    "tcp.timeout": "Sin respuesta al SYN dentro del tiempo de conexión",
    "tcp.unreachable": "Equipo o red inalcanzable",
    "tcp.dns": "El nombre no se pudo resolver",
    "tcp.error": "Otra falla al conectar",
    "tcp.unsolicited_bytes": "Llegaron bytes sin haberlos pedido, apenas se conectó",
    "tcp.closed_by_peer": "El otro extremo cerró la conexión",
    "tcp.closed_after_first_frame": "El otro extremo cerró apenas recibió nuestra primera trama, "
    "sin devolver nada",
    "bridge.busy": "El puente dice que su puerto está ocupado ('Port already in use')",
    "bridge.message": "El puente envió un mensaje de texto",
    "bridge.telnet": "El puente negocia telnet/RFC 2217",
    "meter.iec62056_21": "Texto IEC 62056-21 (/XXX5...): espera el protocolo de modo E",
    "link.echo": "Volvieron nuestros propios bytes (eco local)",
    "link.garbage": "Bytes que no son DLMS ni texto conocido",
    "link.flood": "El otro extremo envió mucho más de lo que envía un medidor: se contó, no se "
    "guardó todo",
    "ledger.damaged_lines": "El registro de intentos de login tiene líneas dañadas: se saltaron "
    "solo esas",
    "hdlc.partial": "Llegó el comienzo de una trama HDLC que nunca terminó",
    "framing.detected": "Formato de trama detectado",
    "framing.undetermined": "Ni HDLC ni wrapper obtuvieron respuesta",
    "hdlc.ua": "UA recibido: enlace HDLC establecido",
    "hdlc.dm": "DM después del SNRM: el medidor rechaza el enlace",
    "hdlc.frmr": "FRMR: el medidor rechazó una trama",
    "hdlc.no_answer": "Sin respuesta al SNRM dentro del tiempo de espera",
    "hdlc.bad_frame": "Respuesta con FCS/HCS o longitud incorrecta",
    "hdlc.unexpected": "Trama HDLC válida pero no la esperada",
    "hdlc.params_reduced": "El medidor negoció tamaños de información menores que los pedidos",
    "hdlc.params.group_length": "La longitud del grupo de parámetros del SNRM está mal",
    "wrapper.answer": "El medidor respondió al wrapper con un AARE",
    "wrapper.no_answer": "Sin respuesta al AARQ por wrapper",
    "address.found": "Se encontró la dirección en la que responde el medidor",
    "address.not_found": "Ninguna dirección probada obtuvo respuesta",
    "address.budget_exhausted": "Se agotó el presupuesto de direcciones a probar",
    "assoc.accepted": "Asociación aceptada",
    "assoc.rejected": "Asociación rechazada",
    "assoc.auth_failure": "Autenticación rechazada: contraseña equivocada o SAP de cliente que no "
    "corresponde",
    "assoc.mechanism_mismatch": "Nivel de autenticación equivocado para ese SAP de cliente",
    "assoc.context_mismatch": "Contexto de aplicación no soportado (LN/SN o cifrado)",
    "assoc.no_answer": "Sin respuesta al AARQ",
    "assoc.service_error": "El AARE trajo un error de servicio (ConfirmedServiceError)",
    "assoc.unsupported": "Este juego de credenciales no se puede usar aquí",
    "cosem.inactivity_timeout": "El medidor corta el enlace HDLC tras un tiempo de inactividad",
    "cosem.read_failed": "Falló una lectura COSEM",
    "login.budget": "No se probaron más credenciales para no bloquear el medidor",
    "login.lockout": "Señal de bloqueo por intentos fallidos: no se intenta más",
    "login.sap_blocked": "No se prueban más contraseñas en ese SAP de cliente",
    "target.busy": "Otro cliente tiene ocupado el equipo; no se intenta nada más",
    "release.not_clean": "La liberación no fue confirmada",
    "release.rlrq_no_answer": "Sin respuesta al RLRQ",
    "release.disc_no_answer": "Sin respuesta al DISC",
    "engine.exception": "Error interno de dlmsdoctor (no es culpa del medidor)",
    "engine.cancelled": "Prueba cancelada",
    "address.closed_every_time": "El medidor cerró la conexión con cada dirección probada",
    "assoc.late_answer": "El AARE llegó tarde, después de darlo por perdido",
    "timing.slow_service": "El medidor respondió después de la espera: funciona, pero lento",
    "hdlc.damaged_answer": "Llegó una trama HDLC dañada (suma de control errónea): no cuenta "
    "como respuesta",
    "login.already_rejected": "Contraseña no enviada: el medidor ya la rechazó antes",
    "login.ledger_unavailable": "No se envían contraseñas: el registro de intentos no se puede "
    "leer ni escribir",
    "assoc.link_refused": "El medidor rechazó el enlace antes de la asociación",
    "assoc.unexpected": "Respuesta inesperada al AARQ",
    "hdlc.late_answer": "Respuesta HDLC tardía: el medidor contesta más lento que la espera",
    "release.late_answer": "Una respuesta tardía llegó durante la liberación",
    "release.unconfirmed": "No se confirmó la liberación de algo que quizá estaba abierto",
    "safety.logins_held_back": "No se probaron contraseñas: un bloqueo es posible y no se quiere "
    "gastar intentos",
    "target.closed_at_once": "El medidor cortó la conexión apenas recibió la primera trama: "
    "sesión ocupada por otro cliente, bloqueo por intentos o un firewall/proxy",
}

SKIP_REASON = {
    "prerequisite": {"en": "a previous step failed", "es": "falló un paso previo"},
    "not-applicable": {"en": "not needed here", "es": "no corresponde"},
    "user": {"en": "turned off", "es": "desactivado"},
    "budget": {"en": "budget spent", "es": "presupuesto agotado"},
    "lockout": {"en": "lockout guard", "es": "protección contra bloqueo"},
    "held-back": {
        "en": "held back: a lockout is possible",
        "es": "retenido: un bloqueo es posible",
    },
    "cancelled": {"en": "cancelled", "es": "cancelado"},
}

# Figures in step details: label per key, per language; unknown keys are shown as they are.
FIGURE = {
    "sent": {"en": "sent", "es": "enviados"},
    "received": {"en": "received", "es": "recibidos"},
    "loss": {"en": "loss", "es": "pérdida"},
    "rtt": {"en": "RTT", "es": "RTT"},
    "rtt_min": {"en": "RTT min", "es": "RTT mín."},
    "rtt_avg": {"en": "RTT avg", "es": "RTT prom."},
    "rtt_max": {"en": "RTT max", "es": "RTT máx."},
    "connect_time": {"en": "connect time", "es": "tiempo de conexión"},
    "attempts": {"en": "attempts", "es": "intentos"},
    "tries": {"en": "tries", "es": "intentos"},
    "server_address": {"en": "server address", "es": "dirección de servidor"},
    "address_size": {"en": "address size", "es": "tamaño de dirección"},
    "rule": {"en": "rule", "es": "regla"},
    "max_info_tx": {"en": "max info TX", "es": "info máx. TX"},
    "max_info_rx": {"en": "max info RX", "es": "info máx. RX"},
    "window_tx": {"en": "window TX", "es": "ventana TX"},
    "window_rx": {"en": "window RX", "es": "ventana RX"},
    "client_sap": {"en": "client SAP", "es": "SAP de cliente"},
    "mechanism": {"en": "mechanism", "es": "mecanismo"},
    "max_pdu_size": {"en": "max PDU", "es": "PDU máx."},
    "serial_number": {"en": "serial number", "es": "número de serie"},
    "banner_bytes": {"en": "unasked bytes", "es": "bytes no solicitados"},
    "framing": {"en": "framing", "es": "formato de trama"},
    "evidence": {"en": "evidence", "es": "evidencia"},
    "server": {"en": "server", "es": "servidor"},
    "result": {"en": "result", "es": "resultado"},
    "diagnostic": {"en": "diagnostic", "es": "diagnóstico"},
    "credential": {"en": "credential set", "es": "juego de credenciales"},
    "late": {"en": "answered after the wait", "es": "respondido después de la espera"},
    "delay": {"en": "answer after (s)", "es": "respuesta tras (s)"},
    "steps": {"en": "steps", "es": "pasos"},
    "logical_device_name": {"en": "logical device name", "es": "nombre del dispositivo lógico"},
    "firmware": {"en": "firmware", "es": "firmware"},
    "clock": {"en": "clock", "es": "reloj"},
    "hdlc_inactivity_timeout": {"en": "HDLC inactivity timeout (s)", "es": "inactividad HDLC (s)"},
    "tried": {"en": "tried", "es": "probadas"},
    "found": {"en": "found", "es": "encontrada"},
    "method": {"en": "method", "es": "método"},
    "read_with": {"en": "read with set", "es": "leído con el juego"},
    "manufacturer": {"en": "manufacturer", "es": "fabricante"},
}
# Figures that are bookkeeping, not facts a reader needs.
FIGURE_HIDDEN = frozenset({"conn_id", "reason", "exception"})

LOGIN_OUTCOME = {
    "accepted": {"en": "accepted", "es": "aceptado"},
    "rejected": {"en": "rejected", "es": "rechazado"},
    "no-answer": {"en": "no answer", "es": "sin respuesta"},
    "closed": {"en": "connection closed", "es": "conexión cerrada"},
}

AUTH = {
    "none": {"en": "no authentication", "es": "sin autenticación"},
    "low": {"en": "LLS (password)", "es": "LLS (contraseña)"},
    "gmac": {"en": "HLS GMAC", "es": "HLS GMAC"},
}

# Spanish for the cause codes the diagnosis emits: (title, explanation, [(when, action)]).
# Explanations are general: the recorded evidence below them carries this run's specifics.
CAUSE_ES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "icmp.filtered": (
        "El ping no responde pero TCP sí: el ICMP está filtrado (no es una falla)",
        "Muchas redes de medición bloquean el ping. Como la conexión TCP funciona, esto no "
        "indica un problema.",
        [],
    ),
    "tcp.refused": (
        "Conexión TCP rechazada: puerto equivocado o servicio detenido",
        "El equipo respondió con RST: nada escucha en ese puerto.",
        [
            (
                "now",
                "Verifique el puerto configurado y que el puente o el medidor tenga el "
                "servicio activo.",
            )
        ],
    ),
    "tcp.timeout": (
        "La conexión TCP no responde: ruta, firewall o módem fuera de línea",
        "Nunca llegó respuesta al SYN.",
        [("now", "Revise el estado del módem y la ruta (APN, firewall, traceroute).")],
    ),
    "tcp.unreachable": (
        "Red inalcanzable",
        "El sistema operativo informó que no hay ruta hacia el equipo.",
        [("now", "Revise la red del equipo de diagnóstico y la ruta hacia el medidor.")],
    ),
    "tcp.dns": (
        "No se pudo resolver el nombre del equipo",
        "El nombre no se tradujo a una IP.",
        [("now", "Use la IP directamente o corrija el DNS.")],
    ),
    "bridge.busy": (
        "Otro cliente tiene ocupada la única conexión del puente, casi seguro su propio "
        "sistema de lectura",
        "El puente serial-TCP (ser2net) respondió 'Port already in use' y cerró la conexión: "
        "acepta un solo cliente a la vez y ya hay uno conectado. Las tramas no llegaron al "
        "medidor, así que esto no indica que el medidor esté bloqueado ni mal configurado.",
        [
            (
                "now",
                "Pause o detenga el otro cliente (servicio de lectura, SCADA, otra laptop) "
                "y repita la prueba.",
            ),
            (
                "now",
                "No desenergice el medidor ni lo dé por bloqueado: quien rechazó la conexión "
                "fue el puente, no el medidor.",
            ),
            (
                "later",
                "Reserve ventanas para diagnóstico o habilite un segundo puerto en el "
                "puente para mantenimiento.",
            ),
        ],
    ),
    "bridge.teardown_busy": (
        "El puente estuvo ocupado un instante cerrando la conexión anterior (no es una falla)",
        "ser2net responde 'Port already in use' durante una fracción de segundo después de que "
        "un cliente se desconecta; un reintento poco después pasó.",
        [("later", "Haga que el cliente espere un segundo antes de reconectarse al puente.")],
    ),
    "bridge.serial_error": (
        "El puente no puede usar su puerto serie",
        "El puente informó un problema con su dispositivo serie.",
        [("now", "Revise la configuración y los registros del puente y el cable serie.")],
    ),
    "bridge.kicked": (
        "Otro cliente tomó el puente y expulsó esta conexión",
        "",
        [("now", "Identifique y detenga el otro cliente.")],
    ),
    "bridge.telnet": (
        "El puente negocia telnet/RFC 2217 en lugar de pasar bytes crudos",
        "",
        [("now", "Configure el puerto del puente en modo raw.")],
    ),
    "bridge.serial_dead": (
        "El puente responde pero del lado serie no contesta nadie",
        "El TCP funciona, pero ninguna trama obtuvo respuesta en ninguna dirección probada.",
        [("now", "Revise el cable serie, la velocidad y la alimentación del medidor.")],
    ),
    "meter.iec62056_21": (
        "El medidor responde en modo IEC 62056-21 y espera el protocolo de modo E",
        "",
        [("now", "Use el modo E o el puerto DLMS del medidor.")],
    ),
    "link.echo": (
        "Eco local: se reciben las mismas tramas que se envían",
        "Típico de una cabeza óptica o de un RS-485 semidúplex.",
        [("now", "Elimine el eco (configuración del convertidor) o descártelo en el cliente.")],
    ),
    "hdlc.wrong_address": (
        "Dirección HDLC de servidor equivocada en el sistema de lectura",
        "Un medidor HDLC ignora en silencio las tramas que no van dirigidas a su dirección: el "
        "silencio no significa que el medidor esté muerto. Solo contestó en la dirección "
        "indicada en la evidencia.",
        [
            (
                "now",
                "Configure en el sistema de lectura la dirección de servidor del perfil que "
                "funciona (lógica, física y tamaño de dirección).",
            ),
            (
                "later",
                "Anote la dirección de cada medidor: las direcciones derivadas cambian de un "
                "medidor a otro.",
            ),
        ],
    ),
    "hdlc.no_answer": (
        "El medidor no contesta al SNRM",
        "Sin respuesta en HDLC: dirección equivocada, FCS o formato de trama incorrectos, o el "
        "lado serie detrás del puente no funciona.",
        [
            (
                "now",
                "Pruebe las direcciones posibles (incluida la derivada del número de serie) "
                "y revise el lado serie.",
            )
        ],
    ),
    "hdlc.address_refused": (
        "El medidor descarta nuestro SNRM: lo más probable es una dirección de servidor que no "
        "acepta",
        "El equipo cierra la conexión apenas lee nuestra trama HDLC; la evidencia muestra con "
        "qué dirección sí respondió, si la hubo.",
        [
            (
                "now",
                "Configure la dirección de servidor con la que el medidor respondió (ver "
                "perfil y evidencia).",
            ),
            (
                "later",
                "Verifique que ningún otro cliente tenga ocupado el medidor al mismo tiempo.",
            ),
        ],
    ),
    "hdlc.dm": (
        "El medidor rechaza el enlace (DM)",
        "DM significa 'no conectado / rechazado': puede haber otra sesión activa.",
        [("now", "Espere, envíe DISC y reintente.")],
    ),
    "hdlc.dm_cleared": ("Un DM inicial se resolvió con DISC (no es una falla)", "", []),
    "hdlc.frmr": (
        "El medidor rechaza una trama (FRMR)",
        "Trama demasiado larga para la longitud de información negociada, o control/ventana "
        "inválidos.",
        [("now", "Ajuste los parámetros negociados (longitud máx. de info, ventana).")],
    ),
    "link.stale_bytes": (
        "Bytes viejos de una sesión anterior en el puente o el módem",
        "",
        [("now", "Vacíe el búfer después de conectar, envíe DISC primero y espere.")],
    ),
    "link.unasked_bytes": (
        "Llegan bytes sin haberlos pedido, apenas se conecta",
        "",
        [("now", "Léalos y descártelos antes de empezar.")],
    ),
    "link.corrupt_replies": (
        "Respuestas con errores de FCS: ruido en la línea serie",
        "",
        [("now", "Revise cableado, blindaje, velocidad y terminación del bus.")],
    ),
    "link.reply_cut": (
        "Respuestas cortadas antes de terminar",
        "",
        [("now", "Revise tiempos de espera y el puente.")],
    ),
    "link.inactivity_timeout": (
        "La conexión se cierra por inactividad",
        "",
        [("now", "Mantenga la sesión activa o reconecte antes del tiempo de inactividad.")],
    ),
    "meter.slow_replies": (
        "El medidor responde lento",
        "",
        [("later", "Aumente los tiempos de espera del cliente.")],
    ),
    "framing.wrapper_only": (
        "El medidor habla wrapper TCP (IEC 62056-47), no HDLC",
        "Al recibir HDLC cierra el socket.",
        [("now", "Configure el cliente con el formato de trama wrapper en ese puerto.")],
    ),
    "framing.hdlc_only": (
        "El medidor habla HDLC, no wrapper TCP",
        "",
        [("now", "Configure el cliente con el formato de trama HDLC en ese puerto.")],
    ),
    "meter.session_taken": (
        "El medidor ya tiene una sesión abierta con otro cliente",
        "",
        [("now", "Detenga el otro cliente o espere el tiempo de inactividad del medidor.")],
    ),
    "network.proxy": (
        "Un equipo intermedio cierra la conexión",
        "",
        [("now", "Revise firewall/proxy entre el cliente y el medidor.")],
    ),
    "link.closed_after_frame": (
        "El medidor cierra el socket apenas recibe la primera trama",
        "",
        [("now", "Pruebe wrapper con cliente público, espere y pruebe DISC.")],
    ),
    "auth.lockout_elsewhere": (
        "El medidor parece bloqueado por intentos fallidos de otro cliente",
        "",
        [("now", "Detenga los reintentos automáticos y espere el tiempo de bloqueo.")],
    ),
    "auth.lockout": (
        "El medidor bloqueó la autenticación por intentos fallidos",
        "Rechaza incluso la contraseña correcta durante un tiempo después de contraseñas erróneas.",
        [("now", "No intente más contraseñas; espere el tiempo de bloqueo.")],
    ),
    "auth.wrong_password": (
        "Contraseña equivocada (o SAP de cliente que no corresponde a esa contraseña)",
        "El AARE vino rechazado con diagnóstico 13 (authentication-failure).",
        [
            (
                "now",
                "Detenga los intentos: no repita esta contraseña; cada fallo acerca un bloqueo.",
            ),
            (
                "now",
                "Confirme a qué SAP de cliente corresponde esta contraseña, y la contraseña misma "
                "(documentación del medidor, herramienta de configuración).",
            ),
        ],
    ),
    "auth.mechanism_mismatch": (
        "Nivel de autenticación equivocado para ese SAP de cliente",
        "",
        [("now", "Use el mecanismo que corresponde (sin autenticación, LLS o HLS).")],
    ),
    "assoc.context_rejected": (
        "Contexto de aplicación no soportado (LN/SN o cifrado requerido)",
        "",
        [("now", "Pruebe el otro contexto (LN o SN) o el contexto cifrado.")],
    ),
    "assoc.rejected": (
        "El medidor rechazó la asociación",
        "",
        [("now", "Revise el diagnóstico del AARE en la evidencia.")],
    ),
    "assoc.no_answer": (
        "UA recibido pero sin respuesta al AARQ",
        "",
        [
            (
                "now",
                "Revise la longitud del AARQ frente a la negociada y si el medidor exige cifrado.",
            )
        ],
    ),
    "client.malformed_frame": (
        "Una trama que envía el cliente está mal formada: el medidor puede descartarla",
        "Los medidores estrictos descartan en silencio, o cierran la conexión, ante una trama "
        "mal armada (longitudes, FCS, parámetros). El detalle y los bytes correctos están en la "
        "evidencia y en el anexo.",
        [
            (
                "now",
                "Corrija el armado de tramas del cliente (o la versión de su librería) antes "
                "de culpar al medidor; `dlmsdoctor decode` muestra los bytes corregidos.",
            )
        ],
    ),
    "meter.late_replies": (
        "El medidor responde, pero después del tiempo de espera del cliente",
        "La respuesta llegó cuando el cliente ya había dejado de esperarla.",
        [("now", "Aumente el tiempo de espera de respuesta (--timeout).")],
    ),
    "release.not_clean": (
        "El medidor podría seguir con nuestra asociación abierta (liberación no confirmada)",
        "Ningún RLRE ni UA confirmó la liberación. Detrás de un puente, cerrar el TCP no termina "
        "la sesión en el medidor.",
        [("now", "Espere el tiempo de inactividad del medidor antes de la próxima lectura.")],
    ),
    "release.confirmed_late": (
        "La liberación se confirmó tarde: el medidor no conserva ninguna sesión nuestra",
        "El medidor respondió a nuestra liberación cuando dlmsdoctor ya no esperaba. Un RLRE "
        "termina la asociación, y un UA a nuestro DISC termina el enlace y con él la asociación.",
        [("later", "En un enlace tan lento, dé al cliente un tiempo de espera mayor.")],
    ),
    "login.budget": (
        "Juegos de credenciales no probados, para no bloquear el medidor",
        "Se agotó el presupuesto de intentos fallidos (por juego en cada prueba, y por medidor "
        "en una ventana de tiempo que cuenta pruebas anteriores), o un fallo de autenticación "
        "en ese SAP de cliente detuvo los intentos. Esos juegos no se probaron: esta prueba no "
        "muestra que funcionen.",
        [
            ("now", "Corrija primero el juego de credenciales que falla (contraseña y SAP)."),
            (
                "later",
                "El límite por medidor se libera solo cuando envejecen los fallos: espere. Solo "
                "si sabe que el medidor tolera más, súbalo explícitamente con "
                "--meter-login-budget N (el límite por juego y prueba: --max-failed-logins).",
            ),
        ],
    ),
    "dlmsdoctor.bug": (
        "Error interno de dlmsdoctor (no es culpa del medidor)",
        "",
        [("later", "Repórtelo adjuntando el archivo de la sesión.")],
    ),
    "cosem.read_denied": (
        "El medidor niega a este cliente la lectura de algunos objetos (derechos de acceso)",
        "La asociación funciona, pero el medidor responde read-write-denied: ese SAP de cliente "
        "no tiene permiso de lectura sobre esos objetos (el cliente público suele ver pocos).",
        [("now", "Léalos con un SAP de cliente que tenga el permiso (por ejemplo, gestión, 1).")]),
    "cosem.read_failed": (
        "Algunas lecturas fallaron",
        "La asociación funciona, pero el medidor no pudo entregar algunos objetos (no existen o "
        "falla temporal): no afecta la lectura si sus objetos no están entre ellos.",
        [("later", "Revise en la lista de objetos del medidor los que lee su sistema.")]),
    "assoc.unsupported": (
        "Algunos juegos de credenciales no se pudieron probar aquí",
        "Esta versión de dlmsdoctor no maneja ese mecanismo de autenticación; esos juegos se "
        "omitieron sin tocar el medidor.",
        [("later", "Pruebe esos juegos de credenciales con la herramienta del fabricante.")]),
    "wrapper.no_answer": (
        "El medidor ignora nuestra PDU wrapper (wPort o cliente equivocado, o habla HDLC)",
        "Un medidor wrapper no responde a un wPort de destino (dispositivo lógico) o de cliente "
        "que no atiende; un medidor HDLC ignora por completo los bytes del wrapper.",
        [("now", "Repita la prueba con --framing auto y verifique el dispositivo lógico del "
                 "medidor.")]),
    "assoc.aarq_too_long": (
        "El AARQ es más largo que lo que admite el enlace negociado",
        "",
        [("now", "Use segmentación o reduzca el AARQ.")],
    ),
}
CAUSE_ES |= CAUSE_ES_TAP  # the tap's codes (dlmsdoctor tap)
FINDING_ES |= FINDING_ES_TAP


def t(lang: str, key: str, **values: object) -> str:
    """The string ``key`` in ``lang`` (English when missing), formatted with ``values``."""
    entry = _S[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


# A TCP connection that failed: its reason (ConnectionRecord.failed) and the link's one-line
# note, in Spanish (the note is recorded in English).
CONNECT_FAILED = {
    "refused": {"en": "refused", "es": "rechazada"},
    "timeout": {"en": "timeout", "es": "sin respuesta"},
    "unreachable": {"en": "unreachable", "es": "inalcanzable"},
    "dns": {"en": "name not resolved", "es": "nombre no resuelto"},
    "error": {"en": "error", "es": "error"},
}
CONNECT_NOTE_ES = {
    "refused": "conexión rechazada por {where}: nada escucha en ese puerto, o un firewall la "
               "rechaza",
    "timeout": "{where} no respondió dentro de la espera de conexión",
    "unreachable": "{where} es inalcanzable: no hay ruta hasta el equipo",
    "dns": "el nombre {host} no se resuelve",
    "error": "la conexión a {where} falló",
}


# What a capture's report says instead (``Session.kind == "capture"``): dlmsdoctor did not
# test anything, the client in the capture sent the TX frames.
KIND_S: dict[str, dict[str, str]] = {  # "KIND:KEY" -> the words of that kind
    "capture:sum_run": {
        "en": "The capture {source} shows a client talking to {host}:{port} on {date} for "
        "{duration} s: {frames} frames on {conns} TCP connection(s).",
        "es": "La captura {source} muestra a un cliente hablando con {host}:{port} el "
        "{date} durante {duration} s: {frames} tramas en {conns} conexión(es) TCP.",
    },
    "capture:no_profile": {
        "en": "No working connection profile shows in this capture.",
        "es": "En esta captura no se ve un perfil de conexión que funcione.",
    },
    "capture:profile_intro": {
        "en": "These settings worked in this capture; copy them into the reading "
        "system's configuration:",
        "es": "Esta configuración funcionó en esta captura; cópiela en la configuración "
        "del sistema de lectura:",
    },
    "capture:findings": {"en": "Findings read from the capture",
                         "es": "Hallazgos leídos de la captura"},
    "capture:appendix_intro": {
        "en": "Times are seconds since the start of the capture. TX = sent by the client "
        "in the capture, RX = received from the meter or bridge. Offsets are bytes from "
        "the start of the frame.",
        "es": "Los tiempos son segundos desde el inicio de la captura. TX = enviado por el "
        "cliente de la captura, RX = recibido del medidor o del puente. Los desplazamientos "
        "son bytes desde el inicio de la trama. Las decodificaciones usan los términos del "
        "estándar (en inglés), igual que Wireshark.",
    },
    "capture:close_local": {"en": "by the client", "es": "por el cliente"},
    "capture:close_timeout": {"en": "by the client", "es": "por el cliente"},
    "capture:close_rst_local": {"en": "reset by the client (RST)",
                                "es": "reseteada por el cliente (RST)"},
}


def tk(lang: str, key: str, kind: str, **values: object) -> str:
    """``t`` in the words of a session of ``kind`` (a capture says what it shows)."""
    entry = KIND_S.get(f"{kind}:{key}")
    if entry is None:
        return t(lang, key, **values)
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def pick(table: dict[str, dict[str, str]], key: str, lang: str, default: str = "") -> str:
    entry = table.get(key)
    if entry is None:
        return default or key
    return entry.get(lang) or entry["en"]


KIND_S.update({f"tap:{key}": words for key, words in KIND_S_TAP.items()})  # dlmsdoctor tap
KIND_S.update({f"capture:{key}": words for key, words in KIND_S_CAPTURE.items()})  # as a poller

# A browsing session (``Session.kind == "browse"``, the TUI's object browser): the engine's rungs
# to an association, then the reads the technician asked for; "tested" and "probe" would mislead.
KIND_S.update({
    "browse:sum_run": {
        "en": "dlmsdoctor's object browser read {host}:{port} on {date} for {duration} s: "
        "{frames} frames on {conns} TCP connection(s).",
        "es": "El navegador de objetos de dlmsdoctor leyó {host}:{port} el {date} durante "
        "{duration} s: {frames} tramas en {conns} conexión(es) TCP.",
    },
    "browse:sum_run_serial": {
        "en": "dlmsdoctor's object browser read {host} on {date} for {duration} s: {frames} "
        "frames on the serial line.",
        "es": "El navegador de objetos de dlmsdoctor leyó {host} el {date} durante {duration} "
        "s: {frames} tramas por la línea serial.",
    },
    "browse:rungs": {
        "en": "How the meter was reached, and every object read",
        "es": "Cómo se llegó al medidor, y cada objeto leído",
    },
    "browse:findings": {"en": "Findings while browsing",
                        "es": "Hallazgos durante la navegación"},
    "browse:no_profile": {
        "en": "This browsing session found no working connection profile.",
        "es": "En esta sesión de navegación no se encontró un perfil de conexión que funcione.",
    },
    "browse:profile_intro": {
        "en": "These settings worked in this browsing session; copy them into the reading "
        "system's configuration:",
        "es": "Esta configuración funcionó en esta sesión de navegación; cópiela en la "
        "configuración del sistema de lectura:",
    },
    "browse:appendix_intro": {
        "en": "Times are seconds since the start of the browsing session. TX = sent by "
        "dlmsdoctor's object browser, RX = received from the meter or bridge. Offsets are "
        "bytes from the start of the frame.",
        "es": "Los tiempos son segundos desde el inicio de la sesión de navegación. TX = "
        "enviado por el navegador de objetos de dlmsdoctor, RX = recibido del medidor o del "
        "puente. Los desplazamientos son bytes desde el inicio de la trama. Las decodificaciones "
        "usan los términos del estándar (en inglés), igual que Wireshark.",
    },
})


def number(value: float, lang: str, digits: int = 1) -> str:
    """A decimal number the way each language writes it (Spanish: decimal comma)."""
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "es" else text


def figure_value(key: str, value: object, lang: str) -> str:
    """A step figure with its unit: seconds for times become ms, ratios become %."""
    if isinstance(value, bool):
        return {"en": "yes" if value else "no", "es": "sí" if value else "no"}.get(lang, str(value))
    if value is None:
        return str(value)
    if isinstance(value, float) and (
        key == "rtt" or key.startswith("rtt_") or key.endswith("_time")
    ):
        from dlmsdoctor.diagnosis.words import duration

        return duration(value, lang)  # the one rounding of every face
    if key == "mechanism":
        return pick(AUTH, str(value), lang, str(value))
    if key == "address_size" and isinstance(value, int):
        return t(lang, "byte_address", n=value)
    if key == "loss" and isinstance(value, int | float):
        return f"{number(value * 100, lang, 0)} %"
    if isinstance(value, float):
        return number(value, lang, 3)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def when_text(iso: str | None) -> str:
    """ISO time as 'YYYY-MM-DD HH:MM:SS UTC' (the same in both languages, no ambiguity)."""
    if not iso:
        return "-"
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"

# Explanations for the causes whose Spanish entry above has none: a Spanish report never falls
# back to the recorded English explanation.
_EXPLANATION_ES = {
    "assoc.aarq_too_long": "El UA fijó un límite de recepción del medidor menor que la trama que "
    "lleva nuestro AARQ: el medidor descarta las tramas que pasan el límite.",
    "assoc.context_rejected": "El AARE trae el diagnóstico 2 (contexto de aplicación no "
    "soportado): el medidor quiere referenciación por nombre corto (SN) en lugar de nombre "
    "lógico (LN), o un contexto cifrado.",
    "assoc.no_answer": "El medidor aceptó el enlace HDLC (UA) y luego no contesta el pedido de "
    "asociación: normalmente exige un contexto cifrado (suite de seguridad, título de sistema, "
    "claves) u otro SAP de cliente para ese enlace.",
    "assoc.rejected": "El AARE rechazó la asociación sin un diagnóstico que apunte a la "
    "contraseña o al contexto: tamaño de PDU, conformidad o versión DLMS, o una regla del "
    "fabricante.",
    "auth.lockout_elsewhere": "Un medidor bloqueado por contraseñas corta toda conexión después "
    "de la primera trama. Esta prueba no tuvo autenticaciones fallidas: solo otro cliente (el "
    "sistema de lectura, una prueba anterior) pudo causarlas; revise sus registros antes de "
    "concluir que el medidor está bloqueado.",
    "auth.mechanism_mismatch": "El AARE dice que el mecanismo de autenticación no se reconoce, "
    "se requiere o falta (diagnóstico 11, 12 o 14): ese SAP de cliente usa otro nivel.",
    "bridge.kicked": "ser2net escribió 'kicked off, new user is coming': su puerto deja que una "
    "conexión nueva reemplace a la anterior, y otro cliente se conectó mientras tanto.",
    "bridge.telnet": "El puente envió negociación de opciones telnet (FF FB / FF FD ...). Un "
    "cliente DLMS espera un canal de bytes crudo: la negociación corrompe las primeras tramas.",
    "dlmsdoctor.bug": "Una prueba lanzó una excepción inesperada: es un error de dlmsdoctor, "
    "no dice nada del medidor.",
    "framing.hdlc_only": "Las PDU wrapper quedaron sin respuesta (o cerradas) mientras que las "
    "tramas HDLC obtuvieron respuesta, o solo se probó el wrapper.",
    "hdlc.dm_cleared": "Un DM responde al SNRM mientras el medidor conserva un enlace anterior "
    "(un cliente que no se desconectó) o no está listo; se resolvió.",
    "link.closed_after_frame": "El equipo respondió DLMS en otra conexión, pero cortó esta "
    "apenas recibió una trama, sin contestar.",
    "link.corrupt_replies": "Las respuestas del medidor fallan su verificación (FCS) o no son "
    "tramas. Detrás de un puente esto apunta a la línea serie: velocidad, paridad, ruido, un "
    "RS-485 largo sin terminación.",
    "link.inactivity_timeout": "El equipo cerró la conexión después de un tiempo sin tráfico: "
    "el tiempo de inactividad del medidor o del módem. Los clientes que abren la conexión y "
    "esperan más que eso la encuentran cerrada.",
    "link.reply_cut": "El medidor (o el puente) empezó una trama y cerró la conexión antes de "
    "terminarla: un reinicio, un watchdog o un tiempo de espera del puente.",
    "link.stale_bytes": "Llegaron tramas o bytes de un intercambio anterior (guardados en el "
    "puente o el módem) delante de la primera respuesta: un cliente que los toma como "
    "respuesta ve errores de secuencia o de verificación.",
    "link.unasked_bytes": "El equipo envía algo apenas se abre la conexión; los clientes que no "
    "lo esperan lo confunden con la respuesta a su primera trama.",
    "meter.iec62056_21": "La respuesta es una identificación o lectura IEC 62056-21 "
    "('/XXX5...'). El medidor (o su puerto óptico) espera el protocolo de modo E antes de pasar "
    "a HDLC, o el DLMS se atiende en otro puerto.",
    "meter.session_taken": "Muchos medidores y módems atienden a un solo cliente a la vez y "
    "cortan cualquier otra conexión después de su primera trama. Quien la ocupa suele ser el "
    "propio sistema de lectura, o una sesión que un cliente dejó abierta.",
    "meter.slow_replies": "Las respuestas tardan más de un segundo; los clientes con tiempos de "
    "espera cortos abandonan y reintentan, lo que empeora las cosas en un medidor de una sola "
    "sesión.",
    "network.proxy": "Un firewall, proxy o módem que acepta el TCP por su cuenta y lo cierra "
    "cuando llegan los primeros bytes da el mismo cierre inmediato.",
}
for _code, _text in _EXPLANATION_ES.items():
    if _code in CAUSE_ES and not CAUSE_ES[_code][1]:
        CAUSE_ES[_code] = (CAUSE_ES[_code][0], _text, CAUSE_ES[_code][2])

STEP_STATUS["recovered"] = {"en": "recovered", "es": "recuperado"}
STATUS["cancelled"] = {"en": "CANCELLED", "es": "CANCELADA"}

# Step titles (both languages) for steps whose recorded title is shared by several steps: one
# label per step. "release.previous" is the release of the previous association an
# association step sends before its own SNRM (diagnosis/steps.py).
STEP_TITLE_NAMED = {
    "assoc.login.": {"en": "Login with set '{name}'", "es": "Autenticación con el juego '{name}'"},
    "cosem.read.": {"en": "Reads with set '{name}'", "es": "Lecturas con el juego '{name}'"},
    # a capture's logins: by client SAP (the poller's set names are not in the capture)
    "assoc.client.": {"en": "Login of client SAP {name}",
                      "es": "Autenticación del SAP de cliente {name}"},
    "cosem.client.": {"en": "Reads of client SAP {name}",
                      "es": "Lecturas del SAP de cliente {name}"},
}
STEP_TITLE = {
    "release.previous": {"en": "Release of the previous association",
                         "es": "Liberación de la asociación anterior"},
}

_S.update({
    "notes": {"en": "Notes (observations, not faults)",
              "es": "Notas (observaciones, no fallas)"},
    "recovered_by": {"en": "failed at the defaults; recovered by {step}",
                     "es": "falló con los valores iniciales; lo recuperó: {step}"},
    "sum_recovered": {"en": "Recovered by a later step: {items}.",
                      "es": "Recuperado por un paso posterior: {items}."},
    "sum_cancelled": {"en": "The run was cancelled before it finished: what follows is what it "
                            "saw until then.",
                      "es": "La prueba se canceló antes de terminar: lo que sigue es lo que vio "
                            "hasta ese momento."},
    "headline_cancelled": {"en": "The run was cancelled before it finished.",
                           "es": "La prueba se canceló antes de terminar."},
    "yes": {"en": "yes", "es": "sí"},
    "fig_assoc_no_pdu": {"en": "last association {result}",
                         "es": "última asociación {result}"},
    "association_line_no_pdu": {
        "en": "frame #{frame}: {result}, {context} referencing, DLMS {version}",
        "es": "trama #{frame}: {result}, referenciación {context}, DLMS {version}",
    },
    "also_frames": {"en": "also frame {frames}", "es": "también trama {frames}"},
    "no": {"en": "no", "es": "no"},
    "not_set": {"en": "not set", "es": "sin fijar"},
    "frame_owner": {"en": "{owner} (sent during {step})", "es": "{owner} (enviada durante {step})"},
})

# Codec finding codes in Spanish, by the frame's direction: (we sent it, we received it);
# English in diagnosis/words.py CODEC_EN.
CODEC_ES: dict[str, tuple[str, str]] = {
    "hdlc.fcs.mismatch": (
        "la secuencia de verificación (FCS) está mal: un medidor descarta esa trama en "
        "silencio",
        "la secuencia de verificación (FCS) está mal: la trama se dañó en el camino "
        "(ruido, parámetros serie equivocados)",
    ),
    "hdlc.hcs.mismatch": (
        "la verificación del encabezado (HCS) está mal: un medidor descarta esa trama en "
        "silencio",
        "la verificación del encabezado (HCS) está mal: la trama se dañó en el camino",
    ),
    "hdlc.length.mismatch": (
        "el campo de longitud no coincide con el tamaño de la trama",
        "el campo de longitud no coincide con el tamaño de la trama",
    ),
    "hdlc.length.truncated": (
        "la trama termina antes de lo que dice su longitud",
        "la trama termina antes de lo que dice su longitud (cortada)",
    ),
    "hdlc.params.group_length": (
        "la longitud del grupo de parámetros del SNRM está mal",
        "la longitud del grupo de parámetros del UA está mal",
    ),
    "session.secret_masked": (
        "los bytes de la contraseña van enmascarados (********)",
        "los bytes secretos van enmascarados (********)",
    ),
}
_CODEC_SAME_ES = {
    "apdu.aare.rejected": "el AARE rechaza la asociación",
    "apdu.access_error": "el medidor rechazó el acceso",
    "apdu.truncated": "la APDU termina antes que su contenido",
    "apdu.unknown_tag": "un tipo de APDU que el decodificador no conoce",
    "apdu.trailing_bytes": "bytes después del final de la APDU",
    "hdlc.flag.missing_end": "falta la bandera 7E de cierre",
    "hdlc.flag.missing_start": "falta la bandera 7E de apertura",
    "hdlc.frame.short": "muy pocos bytes para una trama HDLC",
    "hdlc.segment.incomplete": "un mensaje segmentado que nunca terminó",
    "hdlc.segment.sequence": "segmentos fuera de secuencia",
    "hdlc.direction.assumed": "el sentido se dedujo de las direcciones",
    "hdlc.address.unterminated": "una dirección sin su bit de cierre",
    "wrapper.version": "la versión del wrapper no es 1",
    "wrapper.length.mismatch": "la longitud del wrapper no coincide con los bytes que siguen",
    "wrapper.length.truncated": "la PDU wrapper termina antes de lo que dice su longitud",
    "stream.bridge.busy": "el puente dice que su puerto está ocupado",
    "stream.bridge.kicked": "el puente nos cortó por un cliente nuevo",
    "stream.bridge.device_busy": "el dispositivo serie del puente está ocupado",
    "stream.bridge.device_error": "el puente no puede abrir su dispositivo serie",
    "stream.bridge.denied": "el puente rechazó a este cliente",
    "stream.bridge.port_state": "el puerto del puente está deshabilitado",
    "stream.bridge.no_free_port": "el puente no tenía puerto libre",
    "stream.echo": "volvieron nuestros propios bytes (eco)",
    "stream.iec62056_21": "texto IEC 62056-21, no DLMS",
    "stream.telnet": "bytes de negociación telnet",
    "stream.text": "texto, no una trama DLMS",
    "stream.garbage": "bytes que no son una trama DLMS",
    "stream.truncated": "una trama cortada",
    "stream.bytes_outside_frame": "bytes fuera de toda trama",
}
for _code, _text in _CODEC_SAME_ES.items():
    CODEC_ES.setdefault(_code, (_text, _text))
CODEC_FAMILY_ES = {
    "hdlc": "observación del decodificador sobre la trama HDLC",
    "wrapper": "observación del decodificador sobre la PDU wrapper",
    "apdu": "observación del decodificador sobre la APDU",
    "stream": "bytes que no son una trama DLMS",
}

# Settings as people read them: label per key (dotted keys of nested settings); keys not here
# are shown with their underscores as spaces; values None or empty are left out.
SETTING = {
    "host": {"en": "host", "es": "equipo"},
    "port": {"en": "port", "es": "puerto"},
    "framing": {"en": "framing", "es": "formato de trama"},
    "server_address": {"en": "server address", "es": "dirección de servidor"},
    "address_size": {"en": "address size", "es": "tamaño de dirección"},
    "serial_number": {"en": "serial number", "es": "número de serie"},
    "credentials": {"en": "credential sets", "es": "juegos de credenciales"},
    "credential_sets": {"en": "credential sets", "es": "juegos de credenciales"},
    "icmp": {"en": "ping first", "es": "ping previo"},
    "icmp_count": {"en": "pings", "es": "pings"},
    "public": {"en": "public association", "es": "asociación pública"},
    "connect_timeout": {"en": "TCP connect timeout", "es": "espera de conexión TCP"},
    "timeout": {"en": "reply timeout", "es": "espera de respuesta"},
    "banner_window": {"en": "wait for unasked bytes", "es": "espera de bytes no pedidos"},
    "disc_first": {"en": "DISC first", "es": "DISC previo"},
    "max_failed_logins": {"en": "failed logins allowed per set", "es":
                          "fallos de autenticación permitidos por juego"},
    "run_max_failures": {"en": "failed logins allowed per run",
                         "es": "fallos de autenticación permitidos por prueba"},
    "ledger_max_failures": {"en": "failed logins allowed per meter",
                            "es": "fallos de autenticación permitidos por medidor"},
    "ledger_window": {"en": "window of the per-meter limit",
                      "es": "ventana del límite por medidor"},
    "discovery_budget": {"en": "addresses to try at most",
                         "es": "direcciones a probar como máximo"},
    "discovery_pace": {"en": "pause between addresses", "es": "pausa entre direcciones"},
    "discovery_timeout": {"en": "wait per address", "es": "espera por dirección"},
    "busy_retry_wait": {"en": "wait before retrying a busy bridge",
                        "es": "espera antes de reintentar un puente ocupado"},
    "release_timeout": {"en": "wait for the release", "es": "espera de la liberación"},
    "link": {"en": "link", "es": "enlace"},
    "baud": {"en": "baud rate", "es": "velocidad"},
    "serial_format": {"en": "serial format", "es": "formato serie"},
    "retry_rejected": {"en": "send passwords refused before", "es":
                       "reenviar contraseñas ya rechazadas"},
    "ignore_ledger_errors": {"en": "log in although the login ledger is unusable",
                             "es": "autenticar aunque el registro de intentos no sirva"},
    "stopped_reason": {"en": "run stopped by", "es": "prueba detenida por"},
    "demo_earlier_failed_logins": {"en": "failed logins of the earlier client (demo)",
                                   "es": "autenticaciones fallidas del cliente anterior (demo)"},
    "timeouts": {"en": "timeouts", "es": "tiempos de espera"},
    "timeouts.connect": {"en": "connect", "es": "conexión"},
    "timeouts.frame": {"en": "frame", "es": "trama"},
    "facts.rtt": {"en": "measured round trip", "es": "ida y vuelta medida"},
    "facts.framing": {"en": "framing found", "es": "formato de trama encontrado"},
    "facts.framing_evidence": {"en": "framing proven by", "es": "formato probado por"},
    "facts.server": {"en": "server address found", "es": "dirección de servidor encontrada"},
    "facts.hdlc_params": {"en": "negotiated HDLC parameters",
                          "es": "parámetros HDLC negociados"},
    "facts.max_pdu_size": {"en": "max PDU size", "es": "tamaño máx. de PDU"},
    "facts.connections": {"en": "connections", "es": "conexiones"},
    "facts.delays": {"en": "slowest answer per service",
                     "es": "respuesta más lenta por servicio"},
    "facts.delays.link": {"en": "link", "es": "enlace"},
    "facts.delays.association": {"en": "association", "es": "asociación"},
    "facts.delays.get": {"en": "reads", "es": "lecturas"},
    "facts.delays.release": {"en": "release", "es": "liberación"},
    "facts.delays.disc": {"en": "DISC", "es": "DISC"},
    "facts.delays.action": {"en": "ACTION", "es": "ACTION"},
    "facts.failed_logins": {"en": "failed logins in this run",
                            "es": "autenticaciones fallidas en esta prueba"},
    "facts.answer_delay": {"en": "meter's answer delay", "es": "demora de respuesta del medidor"},
}
# Settings whose numbers are seconds.
SETTING_SECONDS = frozenset({
    "connect_timeout", "timeout", "banner_window", "ledger_window", "discovery_pace",
    "discovery_timeout", "busy_retry_wait", "release_timeout", "facts.rtt",
    "facts.answer_delay",
})


def step_title(step_id: str, title: str, lang: str) -> str:
    """One label per step, in ``lang``: named steps carry their set's name; other steps the
    Spanish table, or their recorded (English) title."""
    base = step_id.split("#")[0]
    if base in STEP_TITLE:
        return STEP_TITLE[base].get(lang) or STEP_TITLE[base]["en"]
    for prefix, pattern in STEP_TITLE_NAMED.items():
        if base.startswith(prefix):
            return (pattern.get(lang) or pattern["en"]).format(name=base[len(prefix):])
    if lang == "es":
        return STEP_TITLE_ES.get(base, title)
    return title

# The settling of steps keeps what the engine recorded in the details: bookkeeping, not figures.
FIGURE_HIDDEN = FIGURE_HIDDEN | {"recorded_status", "recorded_summary", "recovered_by",
                                 # the framing rung's own verdict words: its summary says them
                                 "hdlc", "wrapper", "evidence"}



# Serial lines, optical heads and RFC 2217 bridges (issue 11): their codes' Spanish lives apart.
from dlmsdoctor.output import i18n_serial as _serial  # noqa: E402

_S.update(_serial.STRINGS)
LAYER.update(_serial.LAYER)
STEP_TITLE_ES.update(_serial.STEP_TITLE_ES)
FIGURE.update(_serial.FIGURE)
FINDING_ES.update(_serial.FINDING_ES)
CAUSE_ES.update(_serial.CAUSE_ES)
